package main

import "github.com/graphrelay/graphrelay/bench/internal/benchkit"

// result is what one run measured.
type result struct {
	outcome     string
	idle, after benchkit.Memory
	goStats     string
}
