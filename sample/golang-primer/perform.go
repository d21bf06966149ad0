// Package primer checks whether a number is prime: the user guide's job, in Go.
package primer

import (
	"errors"
	"fmt"
)

// Perform answers whether input["number"] is a prime number.
func Perform(input map[string]interface{}) (interface{}, error) {
	value, found := input["number"]
	if !found {
		return nil, errors.New("missing argument 'number'")
	}
	number, isNumber := value.(float64)
	if !isNumber || number != float64(int64(number)) {
		return nil, fmt.Errorf("'number' must be a whole number, got %v", value)
	}
	return IsPrime(int64(number)), nil
}

// IsPrime reports whether n is prime, by trial division.
func IsPrime(n int64) bool {
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

// DocsInputExample is the example input shown on the job's Swagger page.
func DocsInputExample() map[string]interface{} {
	return map[string]interface{}{"number": 7907}
}
