package mailhdr

import (
	"reflect"
	"testing"
)

// TestReadBlockFrom covers the header shapes that made the policy and the
// converter read different From fields when the policy used go-message's
// strict reader: every one must yield the From below and the body after.
func TestReadBlockFrom(t *testing.T) {
	tests := []struct {
		name, raw, body string
		from            []Address
	}{
		{"plain", "From: a@x.example\r\nSubject: s\r\n\r\nbody\r\n", "body\r\n",
			[]Address{{"", "a@x.example"}}},
		{"mbox From line", "From a@x.example Mon Jan  1 00:00:00 2024\nFrom: Payroll <payroll@x.example>\n\nbody\n", "body\n",
			[]Address{{"Payroll", "payroll@x.example"}}},
		{"byte order mark", "\xEF\xBB\xBFFrom: a@x.example\n\nbody\n", "body\n", []Address{{"", "a@x.example"}}},
		{"blank line before the header", "\r\nFrom: a@x.example\r\n\r\nbody", "body", []Address{{"", "a@x.example"}}},
		{"stray line after From", "Subject: s\nFrom: a@x.example\nthis line is no field\nbody\n",
			"this line is no field\nbody\n", []Address{{"", "a@x.example"}}},
		{"stray line before From", "Subject: s\nno colon here\nFrom: a@x.example\n\nbody\n", "body\n",
			[]Address{{"", "a@x.example"}}},
		{"continuation before any field", " junk\nFrom: a@x.example\n\n", "", []Address{{"", "a@x.example"}}},
		{"folded From", "From: Very Long\r\n Name <a@x.example>\r\n\r\n", "", []Address{{"Very Long Name", "a@x.example"}}},
		{"two From fields", "From: a@x.example\nFrom: b@x.example\n\n", "", []Address{{"", "a@x.example"}, {"", "b@x.example"}}},
		{"blank line of spaces", "From: a@x.example\n   \nbody\n", "body\n", []Address{{"", "a@x.example"}}},
		{"no body", "From: a@x.example", "", []Address{{"", "a@x.example"}}},
		{"cron", "From: root (Cron Daemon)\nTo: root\n\nout\n", "out\n", []Address{{"Cron Daemon", "root"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := ReadBlock([]byte(tc.raw), true, 1<<20)
			got, _ := Addresses(&b.Header, "From")
			if !reflect.DeepEqual(got, tc.from) {
				t.Errorf("From = %+v, want %+v", got, tc.from)
			}
			if body := tc.raw[b.BodyOffset:]; body != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
		})
	}
}

func TestReadBlockLimit(t *testing.T) {
	raw := []byte("From: a@x.example\nX-Long: " + string(make([]byte, 100)) + "\n\n")
	if b := ReadBlock(raw, true, 50); !b.TooBig {
		t.Error("a header over the limit was not reported")
	}
}
