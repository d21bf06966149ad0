// Command racetrack_job_wrapper serves a Go job's Perform function over HTTP.
//
// Racetrack copies this package into a copy of the job's module, next to a generated file
// (job.go) that binds perform to the job's Perform, and builds it into one static binary.
// It uses the standard library only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// PerformFunc is the signature of the job's Perform function.
type PerformFunc func(input map[string]interface{}) (interface{}, error)

const (
	defaultPort         = 7000
	defaultMaxBodyBytes = 16 * 1024 * 1024
	defaultTracing      = "X-Request-Tracing-Id"
	shutdownGrace       = 3 * time.Second
)

// Config is what the wrapper reads from its environment and command line.
type Config struct {
	JobName             string
	JobVersion          string
	DeploymentTimestamp int64
	MaxBodyBytes        int64
	TracingHeader       string
	HomePage            string
}

// configFromEnv reads JOB_NAME, JOB_VERSION, JOB_DEPLOYMENT_TIMESTAMP, JOB_MAX_BODY_BYTES and
// REQUEST_TRACING_HEADER; a malformed number is an error naming the variable.
func configFromEnv(getenv func(string) string) (Config, error) {
	config := Config{
		JobName:       getenv("JOB_NAME"),
		JobVersion:    getenv("JOB_VERSION"),
		TracingHeader: getenv("REQUEST_TRACING_HEADER"),
		HomePage:      "/docs",
	}
	if config.TracingHeader == "" {
		config.TracingHeader = defaultTracing
	}
	var err error
	if config.DeploymentTimestamp, err = envInt(getenv, "JOB_DEPLOYMENT_TIMESTAMP", 0); err != nil {
		return config, err
	}
	if config.MaxBodyBytes, err = envInt(getenv, "JOB_MAX_BODY_BYTES", defaultMaxBodyBytes); err != nil {
		return config, err
	}
	return config, nil
}

// envOr is the variable's value, or fallback when it is unset or empty.
func envOr(getenv func(string) string, name string, fallback string) string {
	if value := getenv(name); value != "" {
		return value
	}
	return fallback
}

func envInt(getenv func(string) string, name string, fallback int64) (int64, error) {
	raw := getenv(name)
	if raw == "" {
		return fallback, nil
	}
	value, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("environment variable %s=%q is not an integer", name, raw)
	}
	return value, nil
}

func main() {
	os.Exit(run(os.Args[1:], perform))
}

// run serves perform until SIGTERM or SIGINT, then lets the calls in flight finish.
func run(args []string, perform PerformFunc) int {
	flags := flag.NewFlagSet("racetrack_job_wrapper", flag.ContinueOnError)
	host := flags.String("host", envOr(os.Getenv, "JOB_HOST", "127.0.0.1"), "address to listen on (default: $JOB_HOST, else 127.0.0.1)")
	port := flags.Int("port", 0, fmt.Sprintf("port (default: $JOB_PORT, else %d)", defaultPort))
	homePage := flags.String("home-page", "/docs", "where / redirects")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	config, err := configFromEnv(os.Getenv)
	if err == nil && *port == 0 {
		var fromEnv int64
		fromEnv, err = envInt(os.Getenv, "JOB_PORT", defaultPort)
		*port = int(fromEnv)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	config.HomePage = *homePage
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	job := newJob(config, perform)
	server := &http.Server{Handler: job, ReadHeaderTimeout: 30 * time.Second}
	stopped := make(chan struct{})
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		received := <-signals
		log.Printf("received %s: stopping after the calls in flight (at most %s)", received, shutdownGrace)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := server.Shutdown(ctx); err != nil {
			log.Printf("stopping: %v", err)
		}
		close(stopped)
	}()
	// The job's package init functions ran before main: the job is ready once it listens.
	job.ready.Store(true)
	log.Printf("serving job %s %s on http://%s", config.JobName, config.JobVersion, listener.Addr())
	if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	<-stopped
	log.Printf("stopped")
	return 0
}
