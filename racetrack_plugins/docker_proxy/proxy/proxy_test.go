package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestJobPathStripsPubPrefix(t *testing.T) {
	cases := map[string][2]string{
		"/pub/job/web/1.0.0/api/v1/perform": {"/api/v1/perform", "/pub/job/web/1.0.0"},
		"/pub/job/web/1.0.0":                {"/", "/pub/job/web/1.0.0"},
		"/live":                             {"/live", ""},
	}
	for in, want := range cases {
		path, prefix := jobPath(in)
		if path != want[0] || prefix != want[1] {
			t.Errorf("jobPath(%q) = %q, %q; want %q, %q", in, path, prefix, want[0], want[1])
		}
	}
}

func TestUpstreamPathMapsApiV1ToRoot(t *testing.T) {
	cases := map[string]string{"/api/v1/perform": "/perform", "/api/v1": "/", "/api/v10": "/api/v10", "/static/a.css": "/static/a.css"}
	for in, want := range cases {
		if got := upstreamPath(in); got != want {
			t.Errorf("upstreamPath(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestLoopbackAddressOnlyForLoopbackURLs(t *testing.T) {
	cases := map[string]string{
		"http://127.0.0.1:7105/pub": "127.0.0.1:7105", "http://localhost:7105": "127.0.0.1:7105",
		"http://pub.example:7105": "", "https://127.0.0.1:7105": "", "": "",
	}
	for in, want := range cases {
		if got := loopbackAddress(in); got != want {
			t.Errorf("loopbackAddress(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestConfigRefusesMalformedPort(t *testing.T) {
	env := map[string]string{"JOB_USER_MODULE_PORT": "seven"}
	if _, err := configFromEnv(func(name string) string { return env[name] }); err == nil {
		t.Fatal("a malformed JOB_USER_MODULE_PORT was accepted")
	}
}

func TestBesideModeForwardsToTheServerOnTheLoopback(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("server saw " + r.URL.Path))
	}))
	_, port, _ := net.SplitHostPort(server.Listener.Addr().String())
	env := map[string]string{"JOB_USER_MODULE_PORT": port, "JOB_DEPLOYMENT_TIMESTAMP": "42"}
	config, err := configFromEnv(func(name string) string { return env[name] })
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(config, tcpUpstream(config))

	answer := httptest.NewRecorder()
	h.ServeHTTP(answer, httptest.NewRequest("GET", "/pub/job/web/1.0.0/api/v1/perform", nil))
	if got := answer.Body.String(); got != "server saw /perform" {
		t.Errorf("forwarded call answered %q", got)
	}
	ready := httptest.NewRecorder()
	h.ServeHTTP(ready, httptest.NewRequest("GET", "/ready", nil))
	if ready.Code != http.StatusOK {
		t.Errorf("/ready answered %d with the server up", ready.Code)
	}
	live := httptest.NewRecorder()
	h.ServeHTTP(live, httptest.NewRequest("GET", "/live", nil))
	if !strings.Contains(live.Body.String(), `"deployment_timestamp":42`) {
		t.Errorf("/live answered %q", live.Body.String())
	}

	server.Close()
	notReady := httptest.NewRecorder()
	h.ServeHTTP(notReady, httptest.NewRequest("GET", "/ready", nil))
	if notReady.Code != http.StatusServiceUnavailable {
		t.Errorf("/ready answered %d with the server gone", notReady.Code)
	}
}
