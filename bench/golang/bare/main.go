// Command bare is the golang benchmark's baseline: the work of sample/golang-primer's Perform
// (a JSON object in, a prime check, JSON out) in a bare net/http handler, no wrapper.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
)

func isPrime(n int64) bool {
	if n < 2 {
		return false
	}
	for i := int64(2); i*i <= n; i++ {
		if n%i == 0 {
			return false
		}
	}
	return true
}

func perform(w http.ResponseWriter, r *http.Request) {
	var input map[string]interface{}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&input); err != nil || input == nil {
		http.Error(w, `{"error": "give a JSON object"}`, http.StatusBadRequest)
		return
	}
	number, ok := input["number"].(float64)
	if !ok {
		http.Error(w, `{"error": "'number' must be a number"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(isPrime(int64(number)))
}

func main() {
	port := flag.Int("port", 7000, "port on 127.0.0.1")
	flag.Parse()
	http.HandleFunc("/api/v1/perform", perform)
	log.Fatal(http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil))
}
