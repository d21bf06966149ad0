module example.com/racetrack/golang-primer

go 1.22.0

toolchain go1.22.4
