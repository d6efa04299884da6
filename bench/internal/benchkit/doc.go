// Package benchkit holds what graphrelay's benchmark commands share: the
// fake tenant on loopback, building and running "graphrelay serve" as a
// child process (so that memory and CPU figures are the daemon's alone),
// reading a process's memory from /proc, a minimal SMTP client that keeps
// the server's reply text, and the generator of large scanner-style
// messages. Linux only: it reads /proc.
package benchkit
