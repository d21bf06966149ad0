package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The same metric names and buckets as the python3 wrapper's, so dashboards fit both.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type endpointMetrics struct {
	started        int64
	internalErrors int64
	bucketCounts   []int64 // per bucket, not cumulative; the last one is +Inf
	count          int64
	total          float64
}

// Metrics counts the calls to the job's endpoints, for GET /metrics (Prometheus text 0.0.4).
type Metrics struct {
	mutex             sync.Mutex
	requestsStarted   int64
	requestsDone      int64
	lastCallTimestamp float64
	endpoints         map[string]*endpointMetrics
}

func newMetrics() *Metrics {
	return &Metrics{endpoints: map[string]*endpointMetrics{}}
}

// CallStarted counts a call and returns its start time for CallDone.
func (m *Metrics) CallStarted(endpoint string) time.Time {
	now := time.Now()
	m.mutex.Lock()
	defer m.mutex.Unlock()
	m.requestsStarted++
	metrics, ok := m.endpoints[endpoint]
	if !ok {
		metrics = &endpointMetrics{bucketCounts: make([]int64, len(durationBuckets)+1)}
		m.endpoints[endpoint] = metrics
	}
	metrics.started++
	m.lastCallTimestamp = float64(now.UnixNano()) / 1e9
	return now
}

// CallDone counts a finished call and observes its duration.
func (m *Metrics) CallDone(endpoint string, started time.Time, internalError bool) {
	m.observe(endpoint, time.Since(started).Seconds(), internalError)
}

func (m *Metrics) observe(endpoint string, seconds float64, internalError bool) {
	m.mutex.Lock()
	defer m.mutex.Unlock()
	m.requestsDone++
	metrics := m.endpoints[endpoint]
	// The first bucket whose bound is >= seconds, as Prometheus's "le" means.
	metrics.bucketCounts[sort.SearchFloat64s(durationBuckets, seconds)]++
	metrics.count++
	metrics.total += seconds
	if internalError {
		metrics.internalErrors++
	}
}

// Render writes the metrics in the Prometheus text exposition format.
func (m *Metrics) Render() string {
	m.mutex.Lock()
	defer m.mutex.Unlock()
	var out strings.Builder
	family(&out, "requests_started_total", "counter", "Calls to the job's endpoints started")
	fmt.Fprintf(&out, "requests_started_total %d\n", m.requestsStarted)
	family(&out, "requests_done_total", "counter", "Calls to the job's endpoints finished")
	fmt.Fprintf(&out, "requests_done_total %d\n", m.requestsDone)
	names := make([]string, 0, len(m.endpoints))
	for name := range m.endpoints {
		names = append(names, name)
	}
	sort.Strings(names)
	family(&out, "endpoint_requests_started_total", "counter", "Calls started, per endpoint")
	for _, name := range names {
		fmt.Fprintf(&out, "endpoint_requests_started_total{endpoint=%q} %d\n", name, m.endpoints[name].started)
	}
	family(&out, "request_internal_errors_total", "counter",
		"Calls that failed with an error in the job's code, per endpoint")
	for _, name := range names {
		if errors := m.endpoints[name].internalErrors; errors > 0 {
			fmt.Fprintf(&out, "request_internal_errors_total{endpoint=%q} %d\n", name, errors)
		}
	}
	family(&out, "request_duration_seconds", "histogram", "Duration of calls, per endpoint")
	for _, name := range names {
		metrics := m.endpoints[name]
		if metrics.count == 0 { // started, not finished yet
			continue
		}
		var cumulative int64
		for i, bound := range durationBuckets {
			cumulative += metrics.bucketCounts[i]
			fmt.Fprintf(&out, "request_duration_seconds_bucket{endpoint=%q,le=%q} %d\n",
				name, number(bound), cumulative)
		}
		fmt.Fprintf(&out, "request_duration_seconds_bucket{endpoint=%q,le=\"+Inf\"} %d\n", name, metrics.count)
		fmt.Fprintf(&out, "request_duration_seconds_sum{endpoint=%q} %s\n", name, number(metrics.total))
		fmt.Fprintf(&out, "request_duration_seconds_count{endpoint=%q} %d\n", name, metrics.count)
	}
	family(&out, "last_call_timestamp", "gauge", "Unix time of the last call started")
	fmt.Fprintf(&out, "last_call_timestamp %s\n", number(m.lastCallTimestamp))
	return out.String()
}

func family(out *strings.Builder, name string, kind string, help string) {
	fmt.Fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

// number writes a float as Python's repr(float) does for these values (1.0, 0.005).
func number(value float64) string {
	text := strconv.FormatFloat(value, 'f', -1, 64)
	if !strings.ContainsAny(text, ".eE") {
		text += ".0"
	}
	return text
}
