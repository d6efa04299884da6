package mailhdr

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	type A = Address
	tests := []struct {
		name string
		in   string
		want []A
		err  error
	}{
		{"bare", "alice@example.com", []A{{"", "alice@example.com"}}, nil},
		{"angle", "Alice <alice@example.com>", []A{{"Alice", "alice@example.com"}}, nil},
		{"quoted", `"Doe, Jane" <jane@example.com>`, []A{{"Doe, Jane", "jane@example.com"}}, nil},
		{"list", "a@x.org, B <b@x.org>,c@x.org", []A{{"", "a@x.org"}, {"B", "b@x.org"}, {"", "c@x.org"}}, nil},
		{"case kept", "Bob <Bob.Smith@Example.COM>", []A{{"Bob", "Bob.Smith@Example.COM"}}, nil},
		{"at in name", "MFP 2nd floor scanner@printer.local <scanner@printer.local>",
			[]A{{"MFP 2nd floor scanner@printer.local", "scanner@printer.local"}}, nil},
		{"specials in name", "Sales [EU] (main) <sales@x.org>", []A{{"Sales [EU]", "sales@x.org"}}, nil},
		{"unquoted comma name", "Doe, John <john@x.org>", []A{{"Doe, John", "john@x.org"}}, nil},
		{"encoded name", "=?utf-8?q?J=C3=B6rg?= <j@x.org>", []A{{"Jörg", "j@x.org"}}, nil},
		{"encoded name in quotes", `"=?iso-8859-1?q?J=F6rg?=" <j@x.org>`, []A{{"Jörg", "j@x.org"}}, nil},
		{"raw utf-8 name", "J\xc3\xb6rg <j@x.org>", []A{{"Jörg", "j@x.org"}}, nil},
		{"raw latin1 name", "J\xf6rg <j@x.org>", []A{{"Jörg", "j@x.org"}}, nil},
		{"comment name", "j@x.org (Jörg Q)", []A{{"Jörg Q", "j@x.org"}}, nil},
		{"comment inside address", "john(the man)@x.org", []A{{"the man", "john@x.org"}}, nil},
		{"quoted local part", `"john doe"@x.org`, []A{{"", `"john doe"@x.org`}}, nil},
		{"group", "Team: a@x.org, B <b@x.org>;, c@x.org", []A{{"", "a@x.org"}, {"B", "b@x.org"}, {"", "c@x.org"}}, nil},
		{"empty group", "undisclosed-recipients:;", nil, nil},
		{"empty group and comment", "unlisted-recipients:; (no To-header on input)", nil, nil},
		{"missing commas", "A <a@x.org> B <b@x.org>", []A{{"A", "a@x.org"}, {"B", "b@x.org"}}, nil},
		{"bare without commas", "a@x.org b@x.org", []A{{"", "a@x.org"}, {"", "b@x.org"}}, nil},
		{"trailing name", "<a@x.org> Alice", []A{{"Alice", "a@x.org"}}, nil},
		{"mailto", "<mailto:a@x.org>", []A{{"", "a@x.org"}}, nil},
		{"source route", "<@relay.x.org:a@x.org>", []A{{"", "a@x.org"}}, nil},
		{"unterminated angle", "Alice <alice@x.org", []A{{"Alice", "alice@x.org"}}, nil},
		{"unterminated quote", `"Alice <alice@x.org>`, []A{{"Alice", "alice@x.org"}}, nil},
		{"unterminated comment", `a@x.org (Alice`, []A{{"Alice", "a@x.org"}}, nil},
		{"local only", "root", []A{{"", "root"}}, nil},
		{"cron", "root (Cron Daemon)", []A{{"Cron Daemon", "root"}}, nil},
		{"mdadm", "mdadm monitoring <root>", []A{{"mdadm monitoring", "root"}}, nil},
		{"bare name", "Scanner", []A{{"", "Scanner"}}, nil},
		{"encoded word alone is no address", "=?utf-8?q?Support_Desk?=", nil, ErrNoAddress},
		{"single quotes", "'Alice' <a@x.org>", []A{{"Alice", "a@x.org"}}, nil},
		{"folded", "Alice\r\n <a@x.org>,\r\n\tb@x.org", []A{{"Alice", "a@x.org"}, {"", "b@x.org"}}, nil},
		{"empty angle skipped", "<>, a@x.org", []A{{"", "a@x.org"}}, nil},
		{"blank", "  ", nil, nil},
		{"phrase only", "not an address", nil, ErrNoAddress},
		{"empty commas", ",,a@x.org,,", []A{{"", "a@x.org"}}, nil},
		{"obsolete blanks around @", "john @ example.com", []A{{"", "john@example.com"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAddressList(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseAddressList(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseAddressList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
