package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testJob(perform PerformFunc) *Job {
	job := newJob(Config{
		JobName: "adder", JobVersion: "1.2.3", DeploymentTimestamp: 42,
		MaxBodyBytes: 64, TracingHeader: defaultTracing, HomePage: "/docs",
	}, perform)
	job.ready.Store(true)
	return job
}

func sum(input map[string]interface{}) (interface{}, error) {
	if input["fail"] != nil {
		return nil, errors.New("asked to fail")
	}
	if input["panic"] != nil {
		panic("asked to panic")
	}
	return input["a"].(float64) + input["b"].(float64), nil
}

func call(t *testing.T, job *Job, method string, path string, body string) (*http.Response, string) {
	t.Helper()
	request := httptest.NewRequest(method, path, strings.NewReader(body))
	request.Header.Set(defaultTracing, "trace-1")
	recorder := httptest.NewRecorder()
	job.ServeHTTP(recorder, request)
	response := recorder.Result()
	content, _ := io.ReadAll(response.Body)
	return response, string(content)
}

func TestPerformAtRootAndUnderPrefix(t *testing.T) {
	job := testJob(sum)
	for _, path := range []string{"/api/v1/perform", "/pub/job/adder/latest/api/v1/perform"} {
		response, body := call(t, job, "POST", path, `{"a": 40, "b": 2}`)
		if response.StatusCode != 200 || body != "42" {
			t.Errorf("%s: %d %s", path, response.StatusCode, body)
		}
		if response.Header.Get(defaultTracing) != "trace-1" {
			t.Errorf("%s: tracing id not passed back: %v", path, response.Header)
		}
	}
}

func TestErrorAnswers(t *testing.T) {
	job := testJob(sum)
	cases := []struct {
		path, body    string
		status        int
		kind, message string
	}{
		{"/api/v1/perform", `[1, 2]`, 400, "ValueError", "must be a JSON object"},
		{"/api/v1/perform", `{"a": `, 400, "ValueError", "not valid JSON"},
		{"/api/v1/perform", `{"fail": true}`, 500, "Error", "asked to fail"},
		{"/api/v1/perform", `{"panic": true}`, 500, "Panic", "asked to panic"},
		{"/api/v1/perform", `{"a": "` + strings.Repeat("x", 100) + `"}`, 413, "PayloadTooLarge", "JOB_MAX_BODY_BYTES"},
		{"/api/v1/other", `{}`, 404, "NotFound", "this job serves: /api/v1/perform"},
		{"/pub/job/other-job/1/api/v1/perform", `{}`, 404, "NotFound", "no route"},
	}
	for _, c := range cases {
		response, body := call(t, job, "POST", c.path, c.body)
		var answer map[string]string
		if err := json.Unmarshal([]byte(body), &answer); err != nil {
			t.Fatalf("%s %s: not JSON: %s", c.path, c.body, body)
		}
		if response.StatusCode != c.status || answer["type"] != c.kind || !strings.Contains(answer["error"], c.message) {
			t.Errorf("%s %s: %d %v", c.path, c.body, response.StatusCode, answer)
		}
	}
}

func TestProbesAndMetrics(t *testing.T) {
	job := testJob(sum)
	call(t, job, "POST", "/api/v1/perform", `{"a": 1, "b": 2}`)
	call(t, job, "POST", "/api/v1/perform", `{"fail": 1}`)
	_, live := call(t, job, "GET", "/live", "")
	if live != `{"deployment_timestamp":42,"live":true}` {
		t.Errorf("live: %s", live)
	}
	_, metrics := call(t, job, "GET", "/pub/job/adder/1.2.3/metrics", "")
	for _, line := range []string{
		"requests_started_total 2", "requests_done_total 2",
		`request_internal_errors_total{endpoint="/perform"} 1`,
		`request_duration_seconds_count{endpoint="/perform"} 2`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
	job.ready.Store(false)
	response, ready := call(t, job, "GET", "/ready", "")
	if response.StatusCode != 503 || ready != `{"ready":false}` {
		t.Errorf("ready before start: %d %s", response.StatusCode, ready)
	}
}

func TestRedirectsAreRelative(t *testing.T) {
	job := testJob(sum)
	for path, location := range map[string]string{
		"/": "docs", "/pub/job/adder/latest": "latest/docs", "/pub/job/adder/latest/": "docs",
		"/docs/": "../docs",
	} {
		response, _ := call(t, job, "GET", path, "")
		if response.StatusCode != 307 || response.Header.Get("Location") != location {
			t.Errorf("%s: %d %q", path, response.StatusCode, response.Header.Get("Location"))
		}
	}
}

func TestOpenAPIServerIsThePrefix(t *testing.T) {
	job := testJob(sum)
	_, body := call(t, job, "GET", "/pub/job/adder/latest/openapi.json", "")
	var document map[string]interface{}
	if err := json.Unmarshal([]byte(body), &document); err != nil {
		t.Fatal(err)
	}
	servers := document["servers"].([]interface{})
	if servers[0].(map[string]interface{})["url"] != "/pub/job/adder/latest" {
		t.Errorf("servers: %v", servers)
	}
}

func TestConfigRefusesMalformedNumbers(t *testing.T) {
	env := map[string]string{"JOB_DEPLOYMENT_TIMESTAMP": "soon"}
	_, err := configFromEnv(func(name string) string { return env[name] })
	if err == nil || !strings.Contains(err.Error(), "JOB_DEPLOYMENT_TIMESTAMP") {
		t.Errorf("error: %v", err)
	}
}

func TestListeningAddressComesFromJobHost(t *testing.T) {
	env := map[string]string{"JOB_HOST": "0.0.0.0"}
	getenv := func(name string) string { return env[name] }
	if got := envOr(getenv, "JOB_HOST", "127.0.0.1"); got != "0.0.0.0" {
		t.Fatalf("JOB_HOST=0.0.0.0 gave %q", got)
	}
	if got := envOr(func(string) string { return "" }, "JOB_HOST", "127.0.0.1"); got != "127.0.0.1" {
		t.Fatalf("no JOB_HOST gave %q, want 127.0.0.1", got)
	}
}
