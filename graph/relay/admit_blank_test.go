package relay

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph/convert"
	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// TestAdmitJudgesEmptyAsSend: Admit, before the 250, refuses a message as
// empty exactly when Send would refuse it as empty after the 250, in both
// formats, also when a multi-byte Unicode space straddles the end of one
// of Admit's reads, and when a MIME message's content starts only after
// the part PrepareMIME reads.
func TestAdmitJudgesEmptyAsSend(t *testing.T) {
	t.Parallel()
	const (
		nbsp    = "\u00a0" // 2 bytes
		emSpace = "\u2003" // 3 bytes
	)
	spaces := func(n int) string { return strings.Repeat(" ", n) }
	mimeHead := int(convert.MIMEHeadSize(1 << 30))
	cases := []struct {
		name string
		raw  string
	}{
		{"nbsp across the first read", spaces(511) + nbsp},
		{"nbsp across the first read, then content", spaces(511) + nbsp + "x"},
		{"em space across the second read", spaces(1535) + emSpace + spaces(10)},
		{"em space ending the second read but one", spaces(1534) + emSpace},
		{"em space across the second read, then content", spaces(1535) + emSpace + "Subject: x\r\n\r\nx\r\n"},
		{"a lone lead byte across a read", spaces(511) + "\xc2" + "x"},
		{"nbsp across the sixth read", spaces(32255) + nbsp},
		{"nbsp across 32 KB", spaces(32<<10-1) + nbsp + spaces(100)},
		{"blank beyond the MIME head, then content", strings.Repeat("\r\n", mimeHead/2) + "x"},
	}
	fake := graphtest.New(t, graphtest.Config{})
	r, _ := newRelay(t, fake, readWrite, Options{})
	for _, format := range []string{envelope.FormatJSON, envelope.FormatMIME} {
		for _, c := range cases {
			raw := []byte(c.raw)
			admitErr := r.Admit(testEnvelope(format, "alice@company.com"), bytes.NewReader(raw), int64(len(raw)))
			_, sendErr := r.Send(context.Background(), testEnvelope(format, "alice@company.com"), bytes.NewReader(raw), int64(len(raw)))
			admitEmpty := admitErr == errEmpty
			sendEmpty := sendErr != nil && strings.Contains(sendErr.Error(), "empty message")
			if admitErr != nil && !admitEmpty {
				t.Errorf("%s %s: Admit: %v", format, c.name, admitErr)
			}
			if admitEmpty != sendEmpty {
				t.Errorf("%s %s: Admit refused as empty: %v; Send refused as empty: %v (%v)", format, c.name, admitEmpty, sendEmpty, sendErr)
			}
		}
	}
}
