#!/usr/bin/env bash
# Scans graphrelay on loopback with real tools: nmap's smtp-open-relay
# must not find an open relay in the default configuration or behind a
# rule written without recipients, must find the one a rule with
# recipients ["*"] makes (so the scan is known to detect one), and
# testssl.sh must find nothing of severity HIGH or CRITICAL with the
# default TLS settings. Only 127.0.0.1 is scanned.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
pid=""
pid2=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$pid2" ] && kill "$pid2" 2>/dev/null && wait "$pid2" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
plain_port="$(free_port)"
tls_port="$(free_port)"
omitted_port="$(free_port)"
star_port="$(free_port)"

go build -o "$work/graphrelay" ./cmd/graphrelay
# The built-in defaults, plus one STARTTLS listener with the default TLS
# settings (minimum TLS 1.2, no legacy ciphers) and a self-signed
# certificate, because the default listener has no TLS to scan.
cat >"$work/graphrelay.yaml" <<YAML
outbox_dir: $work/outbox
queue:
  dir: $work/spool
smtp:
  listeners:
    - name: local
      address: 127.0.0.1:$plain_port
    - name: tls
      address: 127.0.0.1:$tls_port
      tls: starttls
admin:
  listen: 127.0.0.1:0
tls:
  self_signed: true
  self_signed_dir: $work/tls
YAML
"$work/graphrelay" serve --config "$work/graphrelay.yaml" 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 1 100); do
	grep -q 'listener=tls' "$work/daemon.log" 2>/dev/null && break
	sleep 0.1
done
grep -q 'listener=tls' "$work/daemon.log" || { cat "$work/daemon.log"; echo "daemon did not start"; exit 1; }

# A second daemon with two rules an admin might write for one network: one
# without recipients (which must get the mailboxes' own domains) and one
# with recipients ["*"] (a deliberate open relay, for the scan to find).
cat >"$work/rules.yaml" <<YAML
outbox_dir: $work/outbox2
queue:
  dir: $work/spool2
smtp:
  hostname: relay.test
  listeners:
    - name: omitted
      address: 127.0.0.1:$omitted_port
    - name: star
      address: 127.0.0.1:$star_port
admin:
  listen: 127.0.0.1:0
rules:
  - name: recipients left out
    listener: omitted
    networks: [127.0.0.1]
    mailbox: relay@example.com
    from: rewrite
  - name: recipients star
    listener: star
    networks: [127.0.0.1]
    mailbox: relay@example.com
    from: rewrite
    recipients: ["*"]
YAML
"$work/graphrelay" serve --config "$work/rules.yaml" 2>"$work/daemon2.log" &
pid2=$!
for _ in $(seq 1 100); do
	grep -q 'listener=star' "$work/daemon2.log" 2>/dev/null && break
	sleep 0.1
done
grep -q 'listener=star' "$work/daemon2.log" || { cat "$work/daemon2.log"; echo "second daemon did not start"; exit 1; }
grep -q 'relays to any domain' "$work/daemon2.log" || { echo "FAIL: no startup warning about recipients \"*\""; exit 1; }

# relay_scan NAME PORT EXPECT runs smtp-open-relay with -vv, which lists
# every combination it found open, and replays each with smtplib before
# believing it: under load nmap misreads go-smtp's multi-line replies and
# reports refused combinations as open. EXPECT is "closed" (no combination
# may really relay) or "open" (at least one must).
relay_scan() {
	local name="$1" port="$2" expect="$3" out="$work/nmap-$1.txt"
	echo "== nmap smtp-open-relay,smtp-commands on 127.0.0.1:$port ($name)"
	nmap -Pn -sV -vv -p "$port" --script smtp-open-relay,smtp-commands 127.0.0.1 | tee "$out"
	grep -q "smtp-open-relay" "$out" || { echo "FAIL: the smtp-open-relay script did not run ($name)"; exit 1; }
	local confirmed
	confirmed="$(python3 - "$port" "$out" <<'PY'
import re, smtplib, sys
port, path = int(sys.argv[1]), sys.argv[2]
pairs = re.findall(r"MAIL FROM:<([^>]*)> -> RCPT TO:<(.*)>\s*$", open(path).read(), re.M)
confirmed = 0
for sender, rcpt in pairs:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="nmap.scanme.org", timeout=20) as s:
        s.ehlo("nmap.scanme.org")
        code, _ = s.docmd("MAIL FROM:<%s>" % sender)
        rcode, rmsg = s.docmd("RCPT TO:<%s>" % rcpt) if code == 250 else (code, b"MAIL refused")
        verdict = "OPEN (confirmed)" if 200 <= rcode < 300 else "refused on replay: nmap misread the reply"
        print("replay MAIL FROM:<%s> RCPT TO:<%s> -> %d %s: %s" % (sender, rcpt, rcode, rmsg.decode(errors="replace"), verdict), file=sys.stderr)
        confirmed += 200 <= rcode < 300
print(confirmed)
PY
)"
	case "$expect" in
	closed)
		[ "$confirmed" -eq 0 ] || { echo "FAIL: $name is an open relay ($confirmed combinations confirmed by replay)"; exit 1; }
		echo "nmap: no open relay ($name)" ;;
	open)
		[ "$confirmed" -gt 0 ] || { echo "FAIL: the scan found no open relay behind recipients [\"*\"] ($name): it cannot detect one"; exit 1; }
		echo "nmap: found the deliberate open relay ($name, $confirmed combinations confirmed)" ;;
	esac
}
relay_scan default "$plain_port" closed
relay_scan omitted "$omitted_port" closed
relay_scan star "$star_port" open

echo "== testssl.sh -t smtp on 127.0.0.1:$tls_port"
testssl_bin="$(command -v testssl.sh || command -v testssl)"
"$testssl_bin" --quiet --color 0 --warnings off -t smtp --jsonfile "$work/testssl.json" "127.0.0.1:$tls_port" >"$work/testssl.txt" 2>&1 || true
python3 - "$work/testssl.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
if not findings:
    sys.exit("FAIL: testssl.sh produced no findings (did the scan run?)")
# The scan uses a throwaway self-signed certificate, so the two findings
# about that certificate's trust and revocation describe the test setup,
# not the TLS settings under test; every other HIGH or CRITICAL fails.
about_test_cert = {"cert_chain_of_trust", "cert_revocation"}
bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL") and f["id"] not in about_test_cert]
for f in findings:
    if f["id"] in about_test_cert and f.get("severity") in ("HIGH", "CRITICAL"):
        print("ignored (test certificate): %s %s: %s" % (f["severity"], f["id"], f.get("finding", "")))
for f in bad:
    print("FAIL: %s %s: %s" % (f["severity"], f["id"], f.get("finding", "")))
print("testssl.sh: %d findings, %d HIGH or CRITICAL" % (len(findings), len(bad)))
sys.exit(1 if bad else 0)
PY
