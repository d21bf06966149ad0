module racetrack.local/dockerproxy

go 1.19
