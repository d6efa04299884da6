package mailhdr

import "testing"

func TestDecodeText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello world", "Hello world"},
		{"trims", "  Hello \t", "Hello"},
		{"folded CRLF", "Hello\r\n world", "Hello world"},
		{"folded LF", "Hello\n\tworld", "Hello\tworld"},
		{"Q utf-8", "=?utf-8?q?caf=C3=A9?=", "café"},
		{"Q underscore", "=?UTF-8?Q?a_b?=", "a b"},
		{"B latin1 is windows-1252", "=?iso-8859-1?b?Y2Fm6SCA?=", "café €"},
		{"lower-case b", "=?utf-8?b?w6k=?=", "é"},
		{"adjacent words lose blank", "=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"adjacent words across fold", "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
		{"word then text keeps blank", "=?utf-8?q?a?= b", "a b"},
		{"text then word keeps blank", "a =?utf-8?q?b?=", "a b"},
		{"split multibyte Q", "=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"},
		{"split multibyte B", "=?utf-8?b?w6nD?= =?utf-8?b?qQ==?=", "éé"},
		{"base64 split mid-quantum", "=?utf-8?b?w6?= =?utf-8?b?k=?=", "é"},
		{"each word padded", "=?utf-8?b?w6k=?==?utf-8?b?w6k=?=", "éé"},
		{"charset change", "=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "éé"},
		{"missing terminator", "=?utf-8?q?caf=C3=A9 suite", "café suite"},
		{"missing terminator at end", "=?utf-8?q?caf=C3=A9", "café"},
		{"glued to text", "Re:=?utf-8?q?caf=C3=A9?=!", "Re:café!"},
		{"spaces inside Q", "=?utf-8?q?hello world?=", "hello world"},
		{"language suffix", "=?utf-8*en?q?hi?=", "hi"},
		{"unknown charset valid utf-8", "=?x-bogus?q?=C3=A9?=", "é"},
		{"unknown charset 8-bit", "=?x-bogus?q?=E9?=", "é"},
		{"empty charset", "=??q?=E9?=", "é"},
		{"bad encoding letter", "=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
		{"not a word", "a =? b", "a =? b"},
		{"question marks", "What? Really?=", "What? Really?="},
		{"raw utf-8", "Gr\xc3\xb6\xc3\x9fe", "Größe"},
		{"raw latin1", "Gr\xf6\xdfe", "Größe"},
		{"raw mixed", "Gr\xc3\xb6\xc3\x9fe \xe9t\xe9", "Größe été"},
		{"iso-2022-jp split", "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "テストテスト"},
		{"shift_jis", "=?shift_jis?b?g2WDWINn?=", "テスト"},
		{"koi8-r", "=?koi8-r?b?8NLJ18XU?=", "Привет"},
		{"ks_c_5601-1987", "=?ks_c_5601-1987?B?x9Gx2w==?=", "한글"},
		{"gb2312", "=?gb2312?b?1tDOxA==?=", "中文"},
		{"big5", "=?big5?b?pKSk5Q==?=", "中文"},
		{"utf-16 with BOM", "=?utf-16?b?/v8AaABp?=", "hi"},
		{"windows-1251", "=?windows-1251?q?=CF=F0=E8=E2=E5=F2?=", "Привет"},
		{"utf-7", "=?utf-7?q?Hi_+AOk-?=", "Hi é"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecodeText(tt.in); got != tt.want {
				t.Errorf("DecodeText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
