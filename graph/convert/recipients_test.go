package convert

import (
	"reflect"
	"testing"

	"github.com/graphrelay/graphrelay/graph"
)

func rcpts(rs []graph.Recipient) []string {
	var out []string
	for _, r := range rs {
		s := r.EmailAddress.Address
		if r.EmailAddress.Name != "" {
			s = r.EmailAddress.Name + " <" + s + ">"
		}
		out = append(out, s)
	}
	return out
}

// Rule 11: the envelope decides who receives the message. RCPTs in To go to
// toRecipients, in Cc to ccRecipients, all others to bccRecipients; header
// addresses outside the envelope receive nothing; comparison ignores case;
// envelope order; no duplicates; names from the headers.
func TestRecipients(t *testing.T) {
	tests := []struct {
		name        string
		env         []string
		to, cc, bcc []string
	}{
		{
			name: "all kinds",
			env:  []string{"juergen@example.com", "<carol@example.com>", "audit@example.com", "bob@example.com"},
			to:   []string{"Müller, Jürgen <juergen@example.com>", "bob@example.com"},
			cc:   []string{"Carol <carol@example.com>"},
			bcc:  []string{"audit@example.com"},
		},
		{
			name: "duplicates and case",
			env:  []string{"BOB@EXAMPLE.COM", "bob@example.com", " Bob@Example.com "},
			to:   []string{"BOB@EXAMPLE.COM"},
		},
		{
			name: "bcc header keeps its name",
			env:  []string{"hidden@example.com"},
			bcc:  []string{"Hidden Name <hidden@example.com>"},
		},
		{
			name: "header-only addresses receive nothing",
			env:  []string{"x@example.net"},
			bcc:  []string{"x@example.net"},
		},
		{
			name: "no envelope falls back to the headers",
			env:  nil,
			to:   []string{"Müller, Jürgen <Juergen@Example.com>", "bob@example.com", "Not Enveloped <ghost@example.com>"},
			cc:   []string{"Carol <carol@example.com>"},
			bcc:  []string{"Hidden Name <hidden@example.com>"},
		},
	}
	for _, tt := range tests {
		for v, res := range convertAll(t, "recipients.eml", Envelope{From: "scanner@example.com", Recipients: tt.env}) {
			m := res.Message
			if !reflect.DeepEqual(rcpts(m.ToRecipients), tt.to) || !reflect.DeepEqual(rcpts(m.CcRecipients), tt.cc) ||
				!reflect.DeepEqual(rcpts(m.BccRecipients), tt.bcc) {
				t.Errorf("%s (%s): to %q cc %q bcc %q", tt.name, v, rcpts(m.ToRecipients), rcpts(m.CcRecipients), rcpts(m.BccRecipients))
			}
		}
	}
}

// Rule 11: no header recipients at all, and a name containing '@'.
func TestRecipientsWithoutHeaders(t *testing.T) {
	res := convertString(t, "Subject: headerless\n\nx\n", Envelope{Recipients: []string{"a@x.org", "b@x.org"}})
	if got := rcpts(res.Message.BccRecipients); !reflect.DeepEqual(got, []string{"a@x.org", "b@x.org"}) || res.Message.ToRecipients != nil {
		t.Errorf("bcc %q to %q", got, rcpts(res.Message.ToRecipients))
	}
	res = convertString(t, "To: MFP 2nd floor scanner@printer.local <scanner@printer.local>\nSubject: odd\n\nx\n",
		Envelope{Recipients: []string{"scanner@printer.local"}})
	if got := rcpts(res.Message.ToRecipients); !reflect.DeepEqual(got, []string{"MFP 2nd floor scanner at printer.local <scanner@printer.local>"}) {
		t.Errorf("to %q", got)
	}
}
