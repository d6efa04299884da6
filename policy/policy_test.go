package policy

import (
	"errors"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

func TestDecide(t *testing.T) {
	boxes := []config.Mailbox{
		{Address: "alerts@company.com"},
		{Address: "Scans@Company.com", ID: "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab"},
	}
	withDefault, err := New(boxes, "alerts@company.com")
	if err != nil {
		t.Fatal(err)
	}
	noDefault, _ := New(boxes, "")
	tests := []struct {
		name       string
		p          *Policy
		envFrom    string
		headerFrom []string
		want       string
		wantErr    error
	}{
		{"header From allowed", withDefault, "printer@lan", []string{"scans@company.com"}, "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab", nil},
		{"header From wins over envelope", withDefault, "alerts@company.com", []string{"SCANS@company.com"}, "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab", nil},
		{"second header From address allowed", withDefault, "", []string{"nas@lan", "scans@company.com"}, "5f0c6a7e-2d1b-4c3e-9a8b-0123456789ab", nil},
		{"envelope sender allowed", withDefault, "Alerts@Company.COM", []string{"nas@lan"}, "alerts@company.com", nil},
		{"neither: default", withDefault, "nas@lan", []string{"nas@lan"}, "alerts@company.com", nil},
		{"null sender, no From: default", withDefault, "", nil, "alerts@company.com", nil},
		{"neither and no default: refused", noDefault, "nas@lan", []string{"nas@lan"}, "", ErrNoMailbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.p.Decide(tt.envFrom, tt.headerFrom)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := d.Mailbox.PathID(); got != tt.want {
				t.Errorf("mailbox = %q, want %q (%s)", got, tt.want, d.Why)
			}
		})
	}
}

func TestNewRejectsUnknownDefault(t *testing.T) {
	if _, err := New([]config.Mailbox{{Address: "a@company.com"}}, "b@company.com"); err == nil {
		t.Fatal("a default outside the allowed mailboxes must be refused")
	}
}
