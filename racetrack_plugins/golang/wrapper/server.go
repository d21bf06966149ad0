package main

import (
	"net/http"
	"strings"
	"sync/atomic"
)

const (
	apiPrefix = "/api/v1/"
	pubPrefix = "/pub/job/"
)

// Job is the wrapper's HTTP handler: every route at the root and under /pub/job/NAME/VERSION.
type Job struct {
	config  Config
	perform PerformFunc
	metrics *Metrics
	ready   atomic.Bool
}

func newJob(config Config, perform PerformFunc) *Job {
	return &Job{config: config, perform: perform, metrics: newMetrics()}
}

// ServeHTTP strips the Pub prefix, then routes the rest of the path.
func (job *Job) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix, path, ok := job.splitPrefix(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", "no route "+r.URL.Path+
			"; this job serves its routes at / and under /pub/job/"+job.config.JobName+"/VERSION")
		return
	}
	if strings.HasPrefix(path, apiPrefix) {
		job.serveCall(w, r, path[len(apiPrefix)-1:])
		return
	}
	switch path {
	case "", "/":
		if r.Method != http.MethodGet {
			break
		}
		redirect(w, relativeURL(r.URL.Path, job.config.HomePage))
		return
	case "/live", "/ready", "/health", "/metrics", "/openapi.json", "/docs", "/docs/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
				r.Method+" "+path+" is not allowed; use GET")
			return
		}
		job.serveGet(w, r, path, prefix)
		return
	}
	if strings.HasPrefix(path, assetsPath) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		serveAsset(w, r, strings.TrimPrefix(path, assetsPath))
		return
	}
	writeError(w, http.StatusNotFound, "NotFound", "no route "+r.Method+" "+path)
}

func (job *Job) serveGet(w http.ResponseWriter, r *http.Request, path string, prefix string) {
	switch path {
	case "/live":
		writeJSON(w, http.StatusOK, map[string]interface{}{
			"live": true, "deployment_timestamp": job.config.DeploymentTimestamp,
		})
	case "/ready":
		status := http.StatusOK
		if !job.ready.Load() {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]interface{}{"ready": job.ready.Load()})
	case "/health":
		job.serveHealth(w)
	case "/metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(job.metrics.Render()))
	case "/openapi.json":
		server := prefix
		if server == "" {
			server = "/"
		}
		writeJSON(w, http.StatusOK, openAPI(job.config, server))
	case "/docs":
		serveDocs(w, job.config)
	case "/docs/":
		// Relative asset URLs would resolve under /docs/; send the browser back to /docs.
		redirect(w, "../docs")
	}
}

func (job *Job) serveHealth(w http.ResponseWriter) {
	ready := job.ready.Load()
	status, code := "pass", http.StatusOK
	if !ready {
		status, code = "fail", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]interface{}{
		"service":              "job",
		"job_name":             job.config.JobName,
		"job_version":          job.config.JobVersion,
		"live":                 true,
		"ready":                ready,
		"status":               status,
		"deployment_timestamp": job.config.DeploymentTimestamp,
	})
}

// splitPrefix splits /pub/job/NAME/VERSION/rest into the prefix and /rest. A path outside
// that prefix is served at the root; a prefix naming another job is not served at all.
func (job *Job) splitPrefix(path string) (string, string, bool) {
	if !strings.HasPrefix(path, pubPrefix) {
		return "", path, true
	}
	parts := strings.SplitN(path, "/", 6) // "", "pub", "job", name, version, rest
	if len(parts) < 5 || parts[3] == "" || parts[4] == "" {
		return "", path, false
	}
	if job.config.JobName != "" && parts[3] != job.config.JobName {
		return "", path, false
	}
	prefix := strings.Join(parts[:5], "/")
	if len(parts) == 5 {
		return prefix, "", true
	}
	return prefix, "/" + parts[5], true
}

// redirect answers 307 with a relative Location (http.Redirect would make it absolute), so
// that the browser stays under the prefix and the version it came through.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// relativeURL leads from a prefix's root (/ or /pub/job/NAME/VERSION[/]) to a page under it.
func relativeURL(fromPath string, toPath string) string {
	target := strings.TrimLeft(toPath, "/")
	if target == "" {
		target = "."
	}
	if strings.HasSuffix(fromPath, "/") {
		return target
	}
	return fromPath[strings.LastIndex(fromPath, "/")+1:] + "/" + target
}
