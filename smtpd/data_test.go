package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/graphrelay/graphrelay/graph/convert"
	"github.com/graphrelay/graphrelay/policy"
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

// crlfReference is crlfReader's original byte-at-a-time loop, kept as the
// specification its faster Read must match.
func crlfReference(in []byte) []byte {
	r := bufio.NewReader(bytes.NewReader(in))
	var out []byte
	lastCR := false
	for {
		b, err := r.ReadByte()
		if err != nil {
			return out
		}
		if b == '\n' && !lastCR {
			out = append(out, '\r', '\n')
			lastCR = false
			if next, err := r.Peek(2); err == nil && next[0] == '.' && next[1] == '.' {
				r.ReadByte()
			}
			continue
		}
		lastCR = b == '\r'
		out = append(out, b)
	}
}

// FuzzCRLFReader checks crlfReader against crlfReference for any input,
// any way the input arrives (chunk) and any size the caller reads in
// (readSize).
func FuzzCRLFReader(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "a\nb\n", "\n\n", "bare\rcr\n", "a\n..x\n", "a\r\n..x\r\n", "\r", "\r\r\n\n..\n.", ""} {
		f.Add([]byte(s), uint8(0), uint8(0))
		f.Add([]byte(s), uint8(1), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk, readSize uint8) {
		var src io.Reader = bytes.NewReader(in)
		if chunk > 0 {
			src = &chunkReader{r: src, n: int(chunk)}
		}
		cr := newCRLFReader(src)
		var got []byte
		buf := make([]byte, int(readSize)+1)
		for {
			n, err := cr.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		cr.release()
		if want := crlfReference(in); !bytes.Equal(got, want) {
			t.Fatalf("crlfReader(%q) = %q, want %q", in, got, want)
		}
	})
}

// chunkReader returns at most n bytes per Read, as a network connection
// may.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
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
	// A body that follows the fields without a blank line is no header,
	// however long it is: the converter reads such a message, so it is
	// not refused as too large.
	long := "From: a@b\r\nScan attached\r\n" + strings.Repeat("text line\r\n", maxHeaderBytes/10)
	if _, rest, err := readHeader(strings.NewReader(long)); err != nil {
		t.Errorf("long body without a blank line: %v", err)
	} else {
		releaseRest(rest)
	}
}

func TestHeaderFrom(t *testing.T) {
	hdr := []byte("From: MFP 2nd floor scanner@printer.local <Scans@Company.com>\r\nTo: x@y\r\n\r\n")
	got := headerFrom(hdr, "")
	if len(got) != 1 || got[0].Address != "Scans@company.com" || got[0].Name != "MFP 2nd floor scanner@printer.local" {
		t.Errorf("headerFrom = %v", got)
	}
	if got := headerFrom([]byte("Subject: none\r\n\r\n"), ""); len(got) != 0 {
		t.Errorf("no From: %v", got)
	}
}

// TestPolicySeesConvertersFrom: for headers that go-message's strict
// reader gave up on, the From the policy decides on (headerFrom over what
// readHeader kept) is the From the converter reports for the same bytes.
func TestPolicySeesConvertersFrom(t *testing.T) {
	tests := []struct {
		name, msg string
		want      []policy.Address
	}{
		{"mbox From line", "From payroll@contoso.com Mon Jan  1 00:00:00 2024\nFrom: Scanner <scans@contoso.com>\nSubject: s\n\nbody\n",
			[]policy.Address{{Name: "Scanner", Address: "scans@contoso.com"}}},
		{"stray non-field line", "Subject: scan\nthis is not a field\nFrom: payroll@contoso.com\n\nbody\n",
			[]policy.Address{{Address: "payroll@contoso.com"}}},
		{"header ends without a blank line", "From: scans@contoso.com\nScan attached\nFrom: payroll@contoso.com\n",
			[]policy.Address{{Address: "scans@contoso.com"}}},
		{"byte order mark", "\xEF\xBB\xBFFrom: scans@contoso.com\n\nbody\n", []policy.Address{{Address: "scans@contoso.com"}}},
		{"leading blank line", "\nFrom: scans@contoso.com\n\nbody\n", []policy.Address{{Address: "scans@contoso.com"}}},
		{"two From fields", "From: scans@contoso.com\nFrom: payroll@contoso.com\n\n",
			[]policy.Address{{Address: "scans@contoso.com"}, {Address: "payroll@contoso.com"}}},
		{"cron", "From: root (Cron Daemon)\nSubject: cron\n\nout\n", []policy.Address{{Name: "Cron Daemon", Address: "root@host.example"}}},
		{"mdadm", "From: mdadm monitoring <root>\n\nout\n", []policy.Address{{Name: "mdadm monitoring", Address: "root@host.example"}}},
		{"IDN", "From: a@Bücher.example\n\n", []policy.Address{{Address: "a@xn--bcher-kva.example"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := newCRLFReader(strings.NewReader(tc.msg))
			hdr, rest, err := readHeader(cr)
			if err != nil {
				t.Fatal(err)
			}
			releaseRest(rest)
			cr.release()
			got := headerFrom(hdr, "host.example")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("policy sees %+v, want %+v", got, tc.want)
			}
			res, err := convert.Convert(strings.NewReader(tc.msg), convert.Envelope{QualifyDomain: "host.example"}, convert.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var conv []policy.Address
			for _, a := range res.HeaderFrom {
				conv = append(conv, policy.Address{Name: a.Name, Address: a.Address})
			}
			if !reflect.DeepEqual(got, conv) {
				t.Errorf("policy sees %+v, converter %+v", got, conv)
			}
		})
	}
}

// BenchmarkReceive4KB reads a 4 KB message through crlfReader and
// readHeader as receive does, in the chunks go-smtp's reader returns.
func BenchmarkReceive4KB(b *testing.B) {
	msg := []byte("From: Printer <p@company.com>\r\nSubject: x\r\n\r\n" +
		strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiu\r\n", 58))
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		cr := newCRLFReader(bytes.NewReader(msg))
		_, rest, err := readHeader(cr)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := rest.Read(buf); err != nil {
				break
			}
		}
		releaseRest(rest)
		cr.release()
	}
}

// BenchmarkHeaderFrom measures the policy's From read: the tolerant block
// split, the address parse, qualification and the canonical form.
func BenchmarkHeaderFrom(b *testing.B) {
	hdr := []byte("Received: from printer.lan\r\nFrom: MFP 2nd floor <scans@company.com>\r\nTo: ops@company.com\r\n" +
		"Subject: scan\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@printer.lan>\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		headerFrom(hdr, "company.com")
	}
}
