module example.com/racetrack/golang-vendored

go 1.22.0

toolchain go1.22.4

require example.com/greeting v1.0.0
