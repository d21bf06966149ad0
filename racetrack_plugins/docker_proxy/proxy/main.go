// Command proxy puts Racetrack's runtime contract in front of a docker-proxy job's own server.
//
// It is the entrypoint of the job's container (host network) and starts the image's own
// command in a private network namespace (with a user namespace, so no capability is needed),
// where the server listens on JOB_USER_MODULE_PORT (7004 by default) on its own loopback. Two
// jobs, two replicas and two versions all listen on 7004 side by side, and nothing reaches the
// server but this proxy. The two halves speak over a Unix socket:
//
//	Pub ─TCP 127.0.0.1:JOB_PORT─▶ proxy (host netns) ─unix─▶ proxy -inner (job netns) ─TCP 127.0.0.1:7004─▶ server
//
// The outer half serves /live, /ready, /health, /metrics, /docs and /openapi.json and forwards
// every other path (a call to /api/v1/X reaches the server's /X, as in the original). The
// inner half brings the loopback up, relays to the server, and relays the server's calls to
// PUB_URL back out. With -racetrack-pod, the proxy is instead a second container of the job's
// pod: the pod is the private network, and the outer half reaches the server on the pod's
// loopback (pod.go). Standard library only.
package main

import (
	"fmt"
	"os"
)

const (
	innerMode = "-racetrack-inner"
	// podMode serves beside the job's server, which the target started in the same network
	// namespace (a Kubernetes pod): no namespace of the proxy's own, no command to start.
	podMode = "-racetrack-pod"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == innerMode {
		os.Exit(runInner(os.Args[2], os.Args[3:]))
	}
	if len(os.Args) == 2 && os.Args[1] == podMode {
		os.Exit(runBeside(os.Getenv))
	}
	command := os.Args[1:]
	if len(command) > 0 && command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 {
		fmt.Fprintln(os.Stderr, "racetrack proxy: no command to run; the image's ENTRYPOINT or CMD starts the job's server")
		os.Exit(2)
	}
	os.Exit(runOuter(command))
}
