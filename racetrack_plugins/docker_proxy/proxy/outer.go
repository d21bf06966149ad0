package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

const (
	capNetAdmin   = 12
	shutdownGrace = 3 * time.Second
)

// runOuter starts the job's command in its own namespaces and serves the contract until the
// command exits; it returns the command's exit code, so that the container's restart policy
// sees the server's crash.
func runOuter(command []string) int {
	config, err := configFromEnv(os.Getenv)
	if err != nil {
		log.Printf("racetrack proxy: %v", err)
		return 2
	}
	dir, err := socketDir()
	if err != nil {
		log.Printf("racetrack proxy: %v", err)
		return 2
	}
	defer os.RemoveAll(dir)
	jobSocket := filepath.Join(dir, "job.sock")
	pubSocket := filepath.Join(dir, "pub.sock")
	if config.PubAddress != "" {
		go relayPub(pubSocket, config.PubAddress)
	}
	child := exec.Command("/proc/self/exe", append([]string{innerMode, dir}, command...)...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	uid, gid := os.Getuid(), os.Getgid()
	child.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		AmbientCaps: []uintptr{capNetAdmin}, // to bring up the loopback of its own namespace
	}
	if err := child.Start(); err != nil {
		log.Printf("racetrack proxy: cannot start the job's command in a private network "+
			"namespace (%v); the target must allow user namespaces for this container", err)
		return 2
	}
	server := &http.Server{
		Addr:              net.JoinHostPort(config.Host, fmt.Sprint(config.Port)),
		Handler:           newHandler(config, socketUpstream(jobSocket)),
		ReadHeaderTimeout: 30 * time.Second,
	}
	listener, err := net.Listen("tcp", server.Addr)
	if err != nil {
		log.Printf("racetrack proxy: cannot listen on %s: %v", server.Addr, err)
		_ = child.Process.Kill()
		return 2
	}
	go func() { _ = server.Serve(listener) }()

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	var waitErr error
	for done := false; !done; {
		select {
		case sig := <-signals:
			// Calls in flight end first (no new ones are taken), then the server is told.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
				defer cancel()
				_ = server.Shutdown(ctx)
				_ = child.Process.Signal(sig)
			}()
		case waitErr = <-exited:
			done = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = server.Shutdown(ctx)
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal())
		}
		return exitErr.ExitCode()
	}
	if waitErr != nil {
		log.Printf("racetrack proxy: %v", waitErr)
		return 1
	}
	return 0
}

// socketDir is a private folder for the two Unix sockets (/tmp, or /dev/shm in an image
// without /tmp, such as one FROM scratch).
func socketDir() (string, error) {
	var last error
	for _, parent := range []string{os.TempDir(), "/dev/shm"} {
		dir, err := os.MkdirTemp(parent, "racetrack-proxy-")
		if err == nil {
			return dir, nil
		}
		last = err
	}
	return "", fmt.Errorf("no writable folder for the proxy's sockets: %v", last)
}

// relayPub accepts the job's calls to Pub (from the inner half) and connects them to Pub.
func relayPub(socket, address string) {
	listener, err := net.Listen("unix", socket)
	if err != nil {
		log.Printf("racetrack proxy: the job cannot call Pub: %v", err)
		return
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go splice(conn, func() (net.Conn, error) { return net.Dial("tcp", address) })
	}
}

// splice connects one accepted connection to a new one, both ways, until either side ends.
func splice(accepted net.Conn, dial func() (net.Conn, error)) {
	defer accepted.Close()
	upstream, err := dial()
	if err != nil {
		return
	}
	defer upstream.Close()
	// The request side is half-closed when the caller stops sending; the answer side's end
	// ends both (an HTTP server that closes has answered).
	go func() {
		_, _ = io.Copy(upstream, accepted)
		if half, ok := upstream.(interface{ CloseWrite() error }); ok {
			_ = half.CloseWrite()
		}
	}()
	_, _ = io.Copy(accepted, upstream)
}
