module racetrack.local/bench/bare

go 1.19
