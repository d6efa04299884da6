package smtpd

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCRLFReader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\nc", "a\r\nb\r\nc"},
		{"\n\n", "\r\n\r\n"},
		{"bare\rcr\n", "bare\rcr\r\n"},
		{"a\n..stuffed after LF\n", "a\r\n.stuffed after LF\r\n"},
		{"a\r\n..after CRLF go-smtp already unstuffed\r\n", "a\r\n..after CRLF go-smtp already unstuffed\r\n"},
		{"a\n.single dot kept\n", "a\r\n.single dot kept\r\n"},
		{"", ""},
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"whole":    strings.NewReader(tt.in),
			"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
		} {
			got, err := io.ReadAll(newCRLFReader(r))
			if err != nil || string(got) != tt.want {
				t.Errorf("%s %q -> %q, %v; want %q", name, tt.in, got, err, tt.want)
			}
		}
	}
}

func TestReadHeader(t *testing.T) {
	msg := "From: a@b\r\nSubject: x\r\n\r\nbody line\r\n"
	hdr, rest, err := readHeader(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rest)
	if string(hdr) != "From: a@b\r\nSubject: x\r\n\r\n" || string(body) != "body line\r\n" {
		t.Errorf("hdr %q body %q", hdr, body)
	}
	// A message that is only headers, without the blank line.
	hdr, rest, err = readHeader(strings.NewReader("Subject: only\r\n"))
	body, _ = io.ReadAll(rest)
	if err != nil || string(hdr) != "Subject: only\r\n" || len(body) != 0 {
		t.Errorf("headers-only: %q %q %v", hdr, body, err)
	}
	// An endless header block is refused instead of buffered.
	huge := "X-Long: " + strings.Repeat("a", maxHeaderBytes+10) + "\r\n\r\n"
	if _, _, err := readHeader(strings.NewReader(huge)); err != errHeaderTooLarge {
		t.Errorf("huge header err = %v", err)
	}
}

func TestHeaderFrom(t *testing.T) {
	hdr := []byte("From: MFP 2nd floor scanner@printer.local <Scans@Company.com>\r\nTo: x@y\r\n\r\n")
	got := headerFrom(hdr)
	if len(got) != 1 || got[0].Address != "Scans@Company.com" || got[0].Name != "MFP 2nd floor scanner@printer.local" {
		t.Errorf("headerFrom = %v", got)
	}
	if got := headerFrom([]byte("Subject: none\r\n\r\n")); len(got) != 0 {
		t.Errorf("no From: %v", got)
	}
}
