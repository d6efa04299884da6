package convert

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// materialize reads every deferred attachment back from the input, so a
// deferred result can be compared with an in-memory one.
func materialize(t *testing.T, res *Result, input []byte) {
	t.Helper()
	for _, d := range res.Deferred {
		if len(res.Message.Attachments[d.Index].ContentBytes) != 0 {
			t.Fatalf("deferred attachment %d still has content", d.Index)
		}
		b, err := d.Bytes(bytes.NewReader(input))
		if err != nil {
			t.Fatal(err)
		}
		res.Message.Attachments[d.Index].ContentBytes = b
	}
	res.Deferred = nil
}

// checkDeferredSame converts raw in memory and with every eligible
// attachment deferred, and requires the same message and warnings.
func checkDeferredSame(t *testing.T, name string, raw []byte) (deferred int) {
	t.Helper()
	env := Envelope{Recipients: []string{"a@example.com"}}
	want, err := Convert(bytes.NewReader(raw), env, Options{})
	if err != nil {
		return 0 // the error cases are the malformed tests' business
	}
	got, err := Convert(bytes.NewReader(raw), env, Options{DeferAttachments: 1})
	if err != nil {
		t.Fatalf("%s: deferred conversion failed: %v", name, err)
	}
	deferred = len(got.Deferred)
	for _, d := range got.Deferred {
		// Size must be known before reading, for createUploadSession.
		r := d.Open(bytes.NewReader(raw))
		n, err := io.Copy(io.Discard, iotest.OneByteReader(r))
		if err != nil || n != d.Size {
			t.Errorf("%s: deferred attachment %d: read %d bytes (%v), Size says %d", name, d.Index, n, err, d.Size)
		}
	}
	materialize(t, got, raw)
	if !reflect.DeepEqual(got.Message, want.Message) {
		t.Errorf("%s: deferred conversion differs from the in-memory one", name)
	}
	if !reflect.DeepEqual(got.Warnings, want.Warnings) {
		t.Errorf("%s: warnings %q, in memory %q", name, got.Warnings, want.Warnings)
	}
	return deferred
}

// Rule 27: deferred content reads back exactly as the in-memory decoding,
// warnings included, for every testdata message in every line-ending form.
func TestDeferredMatchesInMemory(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	total := 0
	for _, f := range files {
		for v, raw := range variants(t, filepath.Base(f)) {
			total += checkDeferredSame(t, filepath.Base(f)+" "+v, raw)
		}
	}
	if total == 0 {
		t.Fatal("no attachment was deferred; the test checks nothing")
	}
}

func TestDeferredCorpus(t *testing.T) {
	_, files := corpusFiles(t)
	total := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += checkDeferredSame(t, f, raw)
	}
	t.Logf("%d corpus messages, %d attachments deferred and read back", len(files), total)
}

// Rule 27: the threshold, the encodings that qualify, and that results
// never alias the input buffer.
func TestDeferredSelection(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	enc := base64.StdEncoding.EncodeToString(big)
	var wrapped strings.Builder
	for i := 0; i < len(enc); i += 76 {
		wrapped.WriteString(enc[i:min(i+76, len(enc))] + "\r\n")
	}
	msg := "From: a@example.com\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n" + wrapped.String() +
		"--b\r\nContent-Type: application/octet-stream; name=qp.bin\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + string(big) + "\r\n" +
		"--b\r\nContent-Type: text/csv; name=raw.csv\r\n\r\n" + string(big) + "\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=small.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n" +
		"--b--\r\n"
	raw := []byte(msg)
	res, err := Convert(bytes.NewReader(raw), Envelope{}, Options{DeferAttachments: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var idx []int
	for _, d := range res.Deferred {
		idx = append(idx, d.Index)
		if d.Size != int64(len(big)) {
			t.Errorf("attachment %d: Size %d, want %d", d.Index, d.Size, len(big))
		}
	}
	// big.bin (base64) and raw.csv (identity) are deferred; the
	// quoted-printable file and the small one stay in memory.
	if !reflect.DeepEqual(idx, []int{0, 2}) {
		t.Fatalf("deferred indexes %v, want [0 2] (names %v)", idx, names(res.Message.Attachments))
	}
	for i, a := range res.Message.Attachments {
		if _, alias := offsetIn(raw, a.ContentBytes); alias {
			t.Errorf("attachment %d (%s) aliases the input buffer", i, a.Name)
		}
	}
	materialize(t, res, raw)
	for _, i := range []int{0, 2} {
		if !bytes.Equal(res.Message.Attachments[i].ContentBytes, big) {
			t.Errorf("attachment %d read back wrong", i)
		}
	}
}
