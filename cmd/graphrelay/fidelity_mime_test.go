package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/convert"
)

// delivery.format: mime passes the original through with the envelope's
// recipients: the stranger in To is removed, the envelope-only recipient
// becomes Bcc, and From is the mailbox.
func TestEndToEndMIMEPassthrough(t *testing.T) {
	t.Parallel()
	r, fake := secretRelay(t, nil, func(c *config.Config) { c.Delivery.Format = config.FormatMIME })
	raw := scanMessage("printer@mfp.lan")
	if rep := sendNetSMTP(t, r.addr, "printer@mfp.lan", scanRcpts, raw); rep.code != 250 {
		t.Fatalf("reply %d %s", rep.code, rep.msg)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 || ds[0].Kind != "mime" {
		t.Fatalf("deliveries = %v", kinds(ds))
	}
	m := ds[0].Message
	if m.From == nil || m.From.Address != "scans@company.com" {
		t.Errorf("From = %+v", m.From)
	}
	if got := fmt.Sprint(addrs(m.To), addrs(m.Cc), addrs(m.Bcc)); got != "[alice@company.com] [bob@company.com] [archive@company.com]" {
		t.Errorf("to/cc/bcc = %s", got)
	}
	if m.Subject != "Scan résumé €" || len(m.Attachments) != 2 {
		t.Errorf("subject %q, %d attachments", m.Subject, len(m.Attachments))
	}
	_, wantBody, _ := strings.Cut(raw, "\r\n\r\n")
	if _, gotBody, _ := strings.Cut(string(ds[0].MIME), "\r\n\r\n"); gotBody != wantBody {
		t.Error("the body was not passed through unchanged")
	}
	if strings.Contains(string(ds[0].MIME), "stranger@elsewhere.com") {
		t.Error("a header recipient outside the envelope reached Graph")
	}
}

// Every fidelity message sent with delivery.format: mime reaches Graph as
// exactly the passthrough rewrite of what smtplib sent: the rewritten
// header, then the body byte for byte; and its recipients are the
// envelope's.
func TestFidelityMIMEPassthrough(t *testing.T) {
	t.Parallel()
	py := requireClient(t, "python3")
	r, fake := secretRelay(t, nil, func(c *config.Config) {
		c.Delivery.Format = config.FormatMIME
		c.Rules = []config.Rule{{Name: "fidelity", Mailbox: "scans@company.com", From: config.FromRewrite, Recipients: []string{"*"}}}
	})
	dir := t.TempDir()
	var jobs []smtplibJob
	var wires [][]byte
	msgs := fidelityMessages(t)
	for i, m := range msgs {
		data := crlfOf(m.raw)
		file := filepath.Join(dir, fmt.Sprintf("mime-%d.eml", i))
		os.WriteFile(file, data, 0o644)
		jobs = append(jobs, smtplibJob{File: file, Rcpts: fidelityRecipients(m.raw)})
		if !bytes.HasSuffix(data, []byte("\r\n")) {
			data = append(data, "\r\n"...)
		}
		wires = append(wires, data)
	}
	codes := runSmtplib(t, py, r.addr, jobs)
	ds := fake.Deliveries()
	refused := 0
	for i, m := range msgs {
		if codes[i] != 250 {
			// The fake, like Exchange, refuses MIME it cannot parse
			// (400 ErrorMimeContentInvalid): passthrough does not repair
			// what JSON conversion would have.
			refused++
			if codes[i] != 554 {
				t.Errorf("%s: refused with %d, want 554 for MIME Graph cannot parse", m.name, codes[i])
			}
			t.Logf("%s: refused with %d (the fake Graph could not parse the MIME)", m.name, codes[i])
			continue
		}
		d := ds[0]
		ds = ds[1:]
		pm, err := convert.PrepareMIME(bytes.NewReader(wires[i]), int64(len(wires[i])), convert.MIMEEnvelope{
			Mailbox: "scans@company.com", Recipients: jobs[i].Rcpts})
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		want, _ := pm.Bytes(bytes.NewReader(wires[i]))
		_, wantBody, _ := bytes.Cut(want, pm.Header)
		if d.Kind != "mime" || !bytes.HasSuffix(d.MIME, wantBody) || !bytes.HasSuffix(wires[i], wantBody) {
			t.Errorf("%s: the body did not pass through unchanged", m.name)
		}
		var got []string
		for _, list := range [][]string{addrs(d.Message.To), addrs(d.Message.Cc), addrs(d.Message.Bcc)} {
			for _, a := range list {
				got = append(got, strings.ToLower(a))
			}
		}
		sort.Strings(got)
		wantRcpts := append([]string{}, jobs[i].Rcpts...)
		for j := range wantRcpts {
			wantRcpts[j] = strings.ToLower(wantRcpts[j])
		}
		sort.Strings(wantRcpts)
		if strings.Join(got, ",") != strings.Join(wantRcpts, ",") {
			t.Errorf("%s: recipients %v, envelope %v", m.name, got, wantRcpts)
		}
	}
	t.Logf("%d messages passed through, %d refused by the fake as unparsable MIME", len(msgs)-refused, refused)
	if refused > 0 && !strings.Contains(r.logs.String(), "ErrorMimeContentInvalid") {
		t.Error("a refusal is not logged with Graph's error code")
	}
}
