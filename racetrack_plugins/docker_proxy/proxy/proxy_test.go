package main

import "testing"

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
