// Package greeter greets by name, with a dependency taken from vendor/ (no network needed).
package greeter

import (
	"fmt"

	"example.com/greeting"
)

// Perform answers a greeting for input["name"].
func Perform(input map[string]interface{}) (interface{}, error) {
	name, ok := input["name"].(string)
	if !ok || name == "" {
		return nil, fmt.Errorf("'name' must be a non-empty string, got %v", input["name"])
	}
	return greeting.Hello(name), nil
}
