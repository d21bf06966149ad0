package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"reflect"
)

const (
	performPath  = "/perform"
	callerHeader = "X-Caller-Name"
)

// serveCall answers POST /api/v1/<endpoint>: a JSON object in, Perform's result out.
func (job *Job) serveCall(w http.ResponseWriter, r *http.Request, endpoint string) {
	// Answers carry the call's tracing id, so that a caller can find the call in the logs.
	tracingID := r.Header.Get(job.config.TracingHeader)
	if tracingID != "" {
		w.Header().Set(job.config.TracingHeader, tracingID)
	}
	if endpoint != performPath {
		writeError(w, http.StatusNotFound, "NotFound",
			"no endpoint POST /api/v1"+endpoint+"; this job serves: /api/v1/perform")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
			r.Method+" /api/v1/perform is not allowed; call it with POST and a JSON object")
		return
	}
	if !job.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "NotReady", "the job is starting; retry later")
		return
	}
	input, status, kind, err := readInput(r, w, job.config.MaxBodyBytes)
	if err != nil {
		writeError(w, status, kind, err.Error())
		return
	}
	started := job.metrics.CallStarted(endpoint)
	result, kind, err := callPerform(job.perform, input)
	var body []byte
	if err == nil {
		if body, err = encodeJSON(result); err != nil {
			kind, err = "TypeError", fmt.Errorf("the result cannot be encoded as JSON: %v", err)
		}
	}
	job.metrics.CallDone(endpoint, started, err != nil)
	if err != nil {
		log.Printf("perform failed (tracing id %q, caller %q): %v",
			tracingID, r.Header.Get(callerHeader), err)
		writeError(w, http.StatusInternalServerError, kind, err.Error())
		return
	}
	writeBody(w, http.StatusOK, body)
}

// readInput reads the body (at most limit bytes) as a JSON object; an empty body is {}.
func readInput(r *http.Request, w http.ResponseWriter, limit int64) (map[string]interface{}, int, string, error) {
	tooLarge := fmt.Errorf("the request body is longer than %d bytes, the limit set by JOB_MAX_BODY_BYTES", limit)
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, "PayloadTooLarge", tooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return nil, http.StatusRequestEntityTooLarge, "PayloadTooLarge", tooLarge
		}
		return nil, http.StatusBadRequest, "ValueError", fmt.Errorf("reading the request body failed: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]interface{}{}, 0, "", nil
	}
	var payload interface{}
	if err := json.Unmarshal(raw, &payload); err != nil {
		return nil, http.StatusBadRequest, "ValueError", fmt.Errorf("the request body is not valid JSON: %v", err)
	}
	input, ok := payload.(map[string]interface{})
	if !ok {
		return nil, http.StatusBadRequest, "ValueError", fmt.Errorf(
			"the request body must be a JSON object, like {\"name\": value}; got %s instead", jsonKind(payload))
	}
	return input, 0, "", nil
}

// callPerform calls the job's function; a panic becomes an error, as an exception in Python.
func callPerform(perform PerformFunc, input map[string]interface{}) (result interface{}, kind string, err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			result, kind, err = nil, "Panic", fmt.Errorf("Perform panicked: %v", recovered)
		}
	}()
	result, err = perform(input)
	if err != nil {
		return nil, errorKind(err), err
	}
	return result, "", nil
}

// errorKind names an error's type as Python names an exception's class: "Error" for the
// plain errors of errors.New and fmt.Errorf, the type's own name otherwise.
func errorKind(err error) string {
	kind := reflect.TypeOf(err)
	for kind.Kind() == reflect.Ptr {
		kind = kind.Elem()
	}
	switch name := kind.Name(); name {
	case "", "errorString", "wrapError", "wrapErrors":
		return "Error"
	default:
		return name
	}
}

func jsonKind(value interface{}) string {
	switch value.(type) {
	case []interface{}:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "something else"
	}
}

// encodeJSON is json.Marshal without escaping <, > and & (as Python's json writes them).
func encodeJSON(value interface{}) ([]byte, error) {
	var body bytes.Buffer
	encoder := json.NewEncoder(&body)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(body.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, value interface{}) {
	body, err := encodeJSON(value)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "TypeError", err.Error())
		return
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers {"error": "<message>", "type": "<kind>"}, as every Racetrack error.
func writeError(w http.ResponseWriter, status int, kind string, message string) {
	body, _ := encodeJSON(map[string]string{"error": message, "type": kind})
	writeBody(w, status, body)
}
