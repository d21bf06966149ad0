// Package greeting is a stand-in dependency, vendored with 'go mod vendor'.
package greeting

// Hello greets name.
func Hello(name string) string { return "Hello, " + name + "!" }
