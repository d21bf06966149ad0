package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes bounds a call's body, which the proxy reads whole before forwarding it (a
// request streamed to the job's server raced with the transport's writer and lost answers).
const maxBodyBytes = 64 << 20

// contractRoutes are answered by the proxy; every other path goes to the job's server.
var contractRoutes = map[string]bool{
	"/live": true, "/ready": true, "/health": true, "/metrics": true,
	"/docs": true, "/docs/": true, "/openapi.json": true,
}

type handler struct {
	config  Config
	forward *httputil.ReverseProxy
	dial    func() (net.Conn, error)
	accepts func(h *handler) error
	metrics *metrics
}

// upstream is how the outer half reaches the job's server: the inner half's Unix socket (a
// private network namespace), or the server's own TCP port (beside it in a pod).
type upstream struct {
	network, address string
	// accepts is nil once the job's server accepts connections.
	accepts func(h *handler) error
}

func socketUpstream(jobSocket string) upstream {
	return upstream{"unix", jobSocket, (*handler).innerHalfAccepts}
}

func newHandler(config Config, up upstream) *handler {
	dial := func() (net.Conn, error) { return net.DialTimeout(up.network, up.address, time.Second) }
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, up.network, up.address)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     60 * time.Second,
	}
	h := &handler{config: config, dial: dial, accepts: up.accepts, metrics: &metrics{codes: map[int]int64{}}}
	h.forward = &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			r.URL.Scheme, r.URL.Host = "http", "127.0.0.1:"+config.UserPortText()
		},
		Transport:     transport,
		FlushInterval: -1, // stream answers as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "JobServerUnreachable",
				fmt.Sprintf("the job's own server does not answer on port %d: %v", config.UserPort, err))
		},
	}
	return h
}

// jobPath is the path without Pub's /pub/job/{name}/{version} prefix, and that prefix.
func jobPath(path string) (string, string) {
	if strings.HasPrefix(path, "/pub/job/") {
		parts := strings.SplitN(path, "/", 6) // "", pub, job, name, version, rest
		if len(parts) >= 5 {
			prefix := strings.Join(parts[:5], "/")
			if len(parts) == 6 {
				return "/" + parts[5], prefix
			}
			return "/", prefix
		}
	}
	return path, ""
}

// upstreamPath maps a job path to the server's: /api/v1/X reaches /X, as in the original.
func upstreamPath(path string) string {
	if rest := strings.TrimPrefix(path, "/api/v1"); rest != path && (rest == "" || rest[0] == '/') {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return path
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, prefix := jobPath(r.URL.Path)
	switch {
	case path == "/live":
		writeJSON(w, http.StatusOK, map[string]interface{}{"live": true, "deployment_timestamp": h.config.DeploymentTimestamp})
	case path == "/ready":
		if err := h.accepts(h); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]interface{}{"ready": false, "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]interface{}{"ready": true})
	case path == "/health":
		writeJSON(w, http.StatusOK, map[string]interface{}{"service": "job", "job_name": h.config.JobName,
			"job_version": h.config.JobVersion, "status": "pass", "deployment_timestamp": h.config.DeploymentTimestamp})
	case path == "/metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(h.metrics.render()))
	case path == "/docs" || path == "/docs/":
		serveDocs(w, h.config)
	case strings.HasPrefix(path, "/docs/swagger-ui/") || strings.HasPrefix(path, "/swagger-ui/"):
		serveAsset(w, r, path[strings.LastIndex(path, "/swagger-ui/")+len("/swagger-ui/"):])
	case path == "/openapi.json":
		server := prefix
		if server == "" {
			server = "/"
		}
		writeJSON(w, http.StatusOK, openAPI(h.config, server))
	default:
		h.proxy(w, r, path)
	}
}

func (h *handler) proxy(w http.ResponseWriter, r *http.Request, path string) {
	started := time.Now()
	recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if r.Body != nil && r.ContentLength != 0 {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLarge",
				fmt.Sprintf("the request body is over %d bytes, the limit of a docker-proxy job", maxBodyBytes))
			return
		} else if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "cannot read the request body: "+err.Error())
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if r.Header.Get("X-Forwarded-Prefix") == "" {
		r.Header.Set("X-Forwarded-Prefix", strings.TrimSuffix(r.URL.Path, path))
	}
	r.URL.Path, r.URL.RawPath = upstreamPath(path), ""
	h.forward.ServeHTTP(recorder, r)
	h.metrics.observe(recorder.status, time.Since(started).Seconds())
}

// innerHalfAccepts is nil once the job's server, behind the inner half, accepts connections.
func (h *handler) innerHalfAccepts() error {
	conn, err := h.dial()
	if err != nil {
		return fmt.Errorf("the proxy's inner half is not up yet")
	}
	defer conn.Close()
	// The inner half connects to the server as soon as it accepts ours, and closes ours when
	// that fails: a read that times out means the server took the connection.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	one := make([]byte, 1)
	if _, err := conn.Read(one); err != nil {
		if netErr, ok := err.(net.Error); ok && netErr.Timeout() {
			return nil
		}
	}
	return fmt.Errorf("the job's server does not accept connections on port %d yet", h.config.UserPort)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if flusher, ok := s.ResponseWriter.(http.Flusher); ok {
		flusher.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, body interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, kind, message string) {
	writeJSON(w, status, map[string]string{"error": message, "type": kind})
}

// metrics counts forwarded calls for GET /metrics (Prometheus text format 0.0.4).
type metrics struct {
	mutex   sync.Mutex
	calls   int64
	errors  int64
	seconds float64
	codes   map[int]int64
}

func (m *metrics) observe(status int, seconds float64) {
	m.mutex.Lock()
	defer m.mutex.Unlock()
	m.calls++
	m.seconds += seconds
	m.codes[status]++
	if status >= 500 {
		m.errors++
	}
}

func (m *metrics) render() string {
	m.mutex.Lock()
	defer m.mutex.Unlock()
	var out strings.Builder
	fmt.Fprintf(&out, "# HELP job_proxy_calls_total Calls forwarded to the job's server\n# TYPE job_proxy_calls_total counter\njob_proxy_calls_total %d\n", m.calls)
	fmt.Fprintf(&out, "# HELP job_proxy_errors_total Forwarded calls answered with a 5xx status\n# TYPE job_proxy_errors_total counter\njob_proxy_errors_total %d\n", m.errors)
	fmt.Fprintf(&out, "# HELP job_proxy_call_seconds_total Time spent in forwarded calls\n# TYPE job_proxy_call_seconds_total counter\njob_proxy_call_seconds_total %g\n", m.seconds)
	fmt.Fprintf(&out, "# HELP job_proxy_responses_total Forwarded calls by status code\n# TYPE job_proxy_responses_total counter\n")
	for code := 100; code < 600; code++ {
		if count, ok := m.codes[code]; ok {
			fmt.Fprintf(&out, "job_proxy_responses_total{code=\"%d\"} %d\n", code, count)
		}
	}
	return out.String()
}
