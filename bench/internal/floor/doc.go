// Package floor is the least an SMTP server on graphrelay's mandated stack
// (github.com/emersion/go-smtp) can do per message, for the benchmark to
// measure graphrelay against: "bare" accepts and discards every message,
// "durable" makes each one durable in a file of its own before its 250.
// The difference between graphrelay and these servers is what graphrelay
// itself costs; the servers' own cost is the stack's and the kernel's.
package floor
