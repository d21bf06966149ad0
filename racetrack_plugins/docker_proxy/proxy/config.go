package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// Config is what both halves read from the job's environment.
type Config struct {
	Host                string // where the outer half listens (127.0.0.1: only Pub reaches it)
	Port                int64  // JOB_PORT
	UserPort            int64  // JOB_USER_MODULE_PORT: the job's own server
	JobName             string
	JobVersion          string
	DeploymentTimestamp int64
	PubAddress          string // host:port of PUB_URL when it is on the loopback
}

func configFromEnv(getenv func(string) string) (Config, error) {
	config := Config{Host: "127.0.0.1", JobName: getenv("JOB_NAME"), JobVersion: getenv("JOB_VERSION")}
	var err error
	if config.Port, err = envInt(getenv, "JOB_PORT", 7000); err != nil {
		return config, err
	}
	if config.UserPort, err = envInt(getenv, "JOB_USER_MODULE_PORT", 7004); err != nil {
		return config, err
	}
	if config.DeploymentTimestamp, err = envInt(getenv, "JOB_DEPLOYMENT_TIMESTAMP", 0); err != nil {
		return config, err
	}
	config.PubAddress = loopbackAddress(getenv("PUB_URL"))
	return config, nil
}

func (c Config) UserPortText() string { return strconv.FormatInt(c.UserPort, 10) }

func envInt(getenv func(string) string, name string, fallback int64) (int64, error) {
	raw := getenv(name)
	if raw == "" {
		return fallback, nil
	}
	value, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || value < 0 {
		return 0, fmt.Errorf("environment variable %s=%q is not a whole number", name, raw)
	}
	return value, nil
}

// loopbackAddress is host:port of an http URL on the loopback ("" for any other URL).
func loopbackAddress(raw string) string {
	parsed, err := url.Parse(raw)
	if err != nil || parsed.Scheme != "http" {
		return ""
	}
	host, port := parsed.Hostname(), parsed.Port()
	if port == "" {
		port = "80"
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return ""
	}
	return net.JoinHostPort(host, port)
}
