//go:build !linux

package main

// filesystem is named on Linux only, where the benchmark runs.
func filesystem(string) string { return "unknown" }
