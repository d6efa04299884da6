//go:build !unix

package benchkit

import "time"

// SelfCPUTime is not measured where there is no getrusage; the benchmark
// runs on Linux only, and this keeps its packages compiling elsewhere.
func SelfCPUTime() time.Duration { return 0 }
