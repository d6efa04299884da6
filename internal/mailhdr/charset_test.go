package mailhdr

import "testing"

func TestDecodeCharset(t *testing.T) {
	tests := []struct {
		label string
		in    string
		want  string
		known bool
	}{
		{"utf-8", "caf\xc3\xa9", "café", true},
		{"UTF-8", "\xef\xbb\xbfhi", "hi", true},
		{"us-ascii", "caf\xe9", "café", true},
		{"iso-8859-1", "caf\xe9 \x80", "café €", true},
		{"ISO-8859-15", "\xa4", "€", true},
		{"iso-8859-2", "\xb1\xb9", "ąš", true},
		{"windows-1252", "\x93q\x94", "\u201cq\u201d", true},
		{"cp1252", "\x80", "€", true},
		{"windows1252", "\x80", "€", true},
		{"iso8859_1", "\xe9", "é", true},
		{"latin-1", "\xe9", "é", true},
		{`"utf-8"`, "ok", "ok", true},
		{"utf-8*en", "ok", "ok", true},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", true},
		{"x-mac-cyrillic", "\x8f", "П", true},
		{"iso-2022-jp", "\x1b$B%F%9%H\x1b(B", "テスト", true},
		{"shift_jis", "\x83\x65\x83\x58\x83\x67", "テスト", true},
		{"x-sjis", "\x83\x65", "テ", true},
		{"cp932", "\x83\x65", "テ", true},
		{"euc-jp", "\xa5\xc6\xa5\xb9\xa5\xc8", "テスト", true},
		{"gb2312", "\xd6\xd0\xce\xc4", "中文", true},
		{"euc-cn", "\xd6\xd0", "中", true},
		{"big5", "\xa4\xa4\xa4\xe5", "中文", true},
		{"euc-kr", "\xc7\xd1", "한", true},
		{"ks_c_5601-1987", "\xc7\xd1\xb1\xdb", "한글", true},
		{"cp949", "\xc7\xd1", "한", true},
		{"utf-16", "\xfe\xff\x00h\x00i", "hi", true},
		{"utf-16", "\xff\xfeh\x00i\x00", "hi", true},
		{"utf-16", "\x00h\x00i", "hi", true},
		{"utf-16", "h\x00i\x00", "hi", true},
		{"utf-16le", "h\x00i\x00", "hi", true},
		{"utf-16be", "\x00h\x00i", "hi", true},
		{"utf-16le", "h\x00i", "h\ufffd", true},
		{"utf-32", "\x00\x00\x00h", "h", true},
		{"utf-7", "1 +- 1 = 2 +AOk-", "1 + 1 = 2 é", true},
		{"iso-8859-8-i", "\xf9", "ש", true},
		{"hz-gb-2312", "~{<:Ky2;S{#,NpJ)l6HK!#~}", "己所不欲，勿施於人。", true},
		{"", "caf\xc3\xa9", "café", false},
		{"fakescii", "caf\xe9", "café", false},
		{"charset", "ok", "ok", false},
		{"x-unknown", "\x81\x8d", "\u0081\u008d", false},
		{"2.5", "ok", "ok", false},
	}
	for _, tt := range tests {
		got, known := DecodeCharset(tt.label, []byte(tt.in))
		if got != tt.want || known != tt.known {
			t.Errorf("DecodeCharset(%q, %q) = %q, %v; want %q, %v", tt.label, tt.in, got, known, tt.want, tt.known)
		}
		if KnownCharset(tt.label) != tt.known {
			t.Errorf("KnownCharset(%q) = %v, want %v", tt.label, !tt.known, tt.known)
		}
	}
}
