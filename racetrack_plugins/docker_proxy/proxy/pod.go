package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// runBeside serves the contract on JOB_HOST:JOB_PORT (the pod's address) in front of the job's
// server on 127.0.0.1:JOB_USER_MODULE_PORT, which another container of the pod runs, until
// SIGTERM or SIGINT; then it stops taking calls and lets those in flight finish.
func runBeside(getenv func(string) string) int {
	config, err := configFromEnv(getenv)
	if err != nil {
		log.Printf("racetrack proxy: %v", err)
		return 2
	}
	if host := getenv("JOB_HOST"); host != "" {
		config.Host = host
	}
	server := &http.Server{
		Addr:              net.JoinHostPort(config.Host, fmt.Sprint(config.Port)),
		Handler:           newHandler(config, tcpUpstream(config)),
		ReadHeaderTimeout: 30 * time.Second,
	}
	listener, err := net.Listen("tcp", server.Addr)
	if err != nil {
		log.Printf("racetrack proxy: cannot listen on %s: %v", server.Addr, err)
		return 2
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case <-signals:
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = server.Shutdown(ctx)
		return 0
	case err := <-served:
		log.Printf("racetrack proxy: %v", err)
		return 1
	}
}

// tcpUpstream is the job's server on the loopback the proxy shares with it.
func tcpUpstream(config Config) upstream {
	address := net.JoinHostPort("127.0.0.1", config.UserPortText())
	accepts := func(h *handler) error {
		conn, err := h.dial()
		if err != nil {
			return fmt.Errorf("the job's server does not accept connections on port %d yet", config.UserPort)
		}
		return conn.Close()
	}
	return upstream{"tcp", address, accepts}
}
