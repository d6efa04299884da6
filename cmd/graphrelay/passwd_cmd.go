package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/graphrelay/graphrelay/auth"
	"github.com/graphrelay/graphrelay/config"
)

// maxPasswordLine bounds what is read from a pipe. bcrypt stops at 72
// bytes; the slack lets HashPassword say "too long" instead of the read
// silently cutting the line.
const maxPasswordLine = 1024

// hashPassword is auth.HashPassword; tests whose subject is the command's
// input and output swap in a minimum-cost hash, as a cost-12 hash takes
// seconds under the race detector.
var hashPassword = auth.HashPassword

// passwdCmd prints a bcrypt hash for the users list. The password comes
// from the first line of stdin when it is piped (so provisioning scripts
// can use it), or from a prompt without echo, asked twice, on a terminal.
// It is never taken as an argument, where it would land in the shell
// history and the process list.
func passwdCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("user", "", "print a complete users entry for this user `name` instead of only the hash")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: graphrelay passwd [--user NAME]

Hashes an SMTP AUTH password with bcrypt for the users list or users_file.
On a terminal it prompts twice without echo; otherwise it reads the first
line of stdin:

  printenv SCANNER_PASSWORD | graphrelay passwd --user scanner

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "graphrelay passwd: unexpected arguments; the password is read from stdin or a prompt, never from the command line")
		fs.Usage()
		return 2
	}
	userSet := false
	fs.Visit(func(f *flag.Flag) { userSet = userSet || f.Name == "user" })
	if userSet {
		if err := auth.CheckName(*name); err != nil {
			fmt.Fprintf(stderr, "graphrelay passwd: --user: %v\n", err)
			return 2
		}
	}

	password, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay passwd: %v\n", err)
		return 1
	}
	hash, err := hashPassword(password)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay passwd: %v\n", err)
		return 1
	}
	if !userSet {
		fmt.Fprintln(stdout, hash)
		return 0
	}
	// yaml.Marshal quotes names that need it ("123", "yes", "a: b"), so the
	// entry pastes as is under users: or into a users_file.
	out, err := yaml.Marshal([]config.User{{Name: *name, PasswordHash: hash}})
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay passwd: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptPassword(int(f.Fd()), stderr)
	}
	line, err := bufio.NewReaderSize(stdin, maxPasswordLine).ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", errors.New("the password line is too long")
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("read the password: %w", err)
	}
	line = trimEOL(line)
	if len(line) == 0 {
		return "", errors.New("no password on stdin (the first line is empty)")
	}
	return string(line), nil
}

// promptPassword asks twice, because a typo nobody saw would lock the
// device out with a password nobody knows.
func promptPassword(fd int, stderr io.Writer) (string, error) {
	ask := func(prompt string) (string, error) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
	first, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	if first == "" {
		return "", errors.New("the password is empty")
	}
	second, err := ask("Repeat password: ")
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("the passwords do not match")
	}
	return first, nil
}

// trimEOL removes one trailing LF or CRLF, and a lone CR, as left by echo
// or by a file saved on Windows.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
