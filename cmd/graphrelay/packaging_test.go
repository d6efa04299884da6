package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graphrelay/graphrelay/config"
)

// The packaging files live at the repository root; tests run in
// cmd/graphrelay.
func repoPath(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func readRepo(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(repoPath(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemdUnitVerifies checks packaging/graphrelay.service with systemd's
// own parser and security analyser, offline.
func TestSystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	analyze := requireClient(t, "systemd-analyze")
	unit := readRepo(t, "packaging", "graphrelay.service")
	const execStart = "ExecStart=/usr/local/bin/graphrelay serve --config /etc/graphrelay/graphrelay.yaml\n"
	if !strings.Contains(unit, execStart) {
		t.Fatalf("the unit lacks %q", execStart)
	}
	// verify requires ExecStart's program to exist and be executable, so
	// the copy names one that does: this test binary. Nothing else changes.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit = strings.ReplaceAll(unit, "/usr/local/bin/graphrelay", self)
	if _, err := os.Stat("/bin/kill"); err != nil {
		t.Logf("no /bin/kill on this host (every systemd host has one); ExecReload checked against %s", self)
		unit = strings.ReplaceAll(unit, "/bin/kill", self)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// verify exits 0 even for directives it ignores ("Unknown key",
	// "Failed to parse ..., ignoring"), so any output is a finding.
	verify := func(path string) string {
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	good := write("graphrelay.service", unit)
	if out := verify(good); out != "" {
		t.Errorf("systemd-analyze verify packaging/graphrelay.service:\n%s", out)
	}
	for _, bad := range []struct{ from, to string }{
		{"ProtectSystem=strict", "ProtectSystem=strcit"},
		{"NoNewPrivileges=yes", "NoNewPrivilege=yes"},
	} {
		p := write("broken.service", strings.Replace(unit, bad.from, bad.to, 1))
		if out := verify(p); !strings.Contains(out, "broken.service") {
			t.Errorf("verify did not report %q: %q", bad.to, out)
		}
	}
	// systemd's exposure score runs from 0 (locked down) to 10; the unit
	// scores 1.6 today. --threshold is in tenths.
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", good).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("hardening regressed (exposure above 2.0): %v\n%s", err, lines[len(lines)-1])
	}
}

// TestSysusersSnippet creates the service user from the sysusers.d snippet
// in a scratch root, as systemd-sysusers would at package install.
func TestSysusersSnippet(t *testing.T) {
	t.Parallel()
	sysusers := requireClient(t, "systemd-sysusers")
	snippet, err := filepath.Abs(repoPath("packaging", "graphrelay.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(file string) (string, error) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sysusers, "--root="+root, "--dry-run", file).CombinedOutput()
		return string(out), err
	}
	out, err := run(snippet)
	if err != nil || !strings.Contains(out, "Creating user 'graphrelay'") || strings.Contains(out, "ignoring") {
		t.Errorf("systemd-sysusers: %v\n%s", err, out)
	}
	broken := filepath.Join(t.TempDir(), "broken.conf")
	os.WriteFile(broken, []byte("q graphrelay -\n"), 0o644)
	if out, err := run(broken); err == nil {
		t.Errorf("a broken snippet passed:\n%s", out)
	}
}

// TestSystemdUnitMatchesConfig ties the unit to the example configuration
// it runs and to graphrelay's defaults, on any host.
func TestSystemdUnitMatchesConfig(t *testing.T) {
	t.Parallel()
	unit := readRepo(t, "packaging", "graphrelay.service")
	for _, want := range []string{
		"User=graphrelay", "StateDirectory=graphrelay", "ConfigurationDirectory=graphrelay",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ReadWritePaths=/var/lib/graphrelay", "WorkingDirectory=/var/lib/graphrelay",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	m := regexp.MustCompile(`\nTimeoutStopSec=(\S+)\n`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatal("no TimeoutStopSec")
	}
	stop, err := time.ParseDuration(m[1])
	if shutdown := config.Default().SMTP.ShutdownTimeout.D(); err != nil || stop <= shutdown {
		t.Errorf("TimeoutStopSec=%s must exceed smtp.shutdown_timeout (%s), or systemd kills open sessions", m[1], shutdown)
	}
	cfg := loadPackaged(t, readRepo(t, "packaging", "graphrelay.yaml"), nil)
	for key, dir := range map[string]string{"queue.dir": cfg.Queue.Dir, "outbox_dir": cfg.OutboxDir, "tls.self_signed_dir": cfg.TLS.SelfSignedDir} {
		if !strings.HasPrefix(dir, "/var/lib/graphrelay/") {
			t.Errorf("%s = %s is outside the unit's StateDirectory, read-only under ProtectSystem=strict", key, dir)
		}
	}
	if cfg.Delivery.Mode != config.ModeQueue {
		t.Errorf("the example runs delivery.mode %s; the unit's state directory is for the spool", cfg.Delivery.Mode)
	}
	if target, err := submissionTarget(cfg.SMTP.Listeners); err != nil {
		t.Errorf("graphrelay sendmail cannot reach the example configuration: %v", err)
	} else if _, p, _ := net.SplitHostPort(target); p != "25" {
		t.Errorf("sendmail would dial %s", target)
	}
}

// fileSettingRE finds *_file settings, whose files must exist for Load.
var fileSettingRE = regexp.MustCompile(`(?m)^(\s*\w+_file:\s*)(\S+)`)

// loadPackaged loads a shipped configuration as "graphrelay serve" would.
// The certificate and key files it names exist on the target host, not
// here: empty stand-ins take their place, since Load checks readability.
func loadPackaged(t *testing.T, text string, env []string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	text = fileSettingRE.ReplaceAllStringFunc(text, func(s string) string {
		m := fileSettingRE.FindStringSubmatch(s)
		p := filepath.Join(dir, filepath.Base(m[2]))
		os.WriteFile(p, nil, 0o600)
		return m[1] + p
	})
	for i, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); strings.HasSuffix(k, "_FILE") {
			p := filepath.Join(dir, filepath.Base(v))
			os.WriteFile(p, nil, 0o600)
			env[i] = k + "=" + p
		}
	}
	path := filepath.Join(dir, "graphrelay.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, env)
	if err != nil {
		t.Fatalf("does not load: %v", err)
	}
	return cfg
}

// yamlDocs decodes every document of a YAML stream into generic values.
func yamlDocs(t *testing.T, text string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// dig walks maps by key and lists by index; nil when a step is missing.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// named returns the element of a list whose field key equals val.
func named(list any, key string, val any) map[string]any {
	s, _ := list.([]any)
	for _, e := range s {
		if m, ok := e.(map[string]any); ok && m[key] == val {
			return m
		}
	}
	return nil
}

// listenPort returns the port of a host:port setting.
func listenPort(t *testing.T, addr any) string {
	t.Helper()
	s, _ := addr.(string)
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return p
}

// TestContainerPackaging ties the Dockerfile, the image's configuration and
// compose.yaml together: ports, the spool volume, the health check and the
// build command.
func TestContainerPackaging(t *testing.T) {
	t.Parallel()
	df := readRepo(t, "Dockerfile")
	image := readRepo(t, "packaging", "container.yaml")
	cfg := loadPackaged(t, image, nil)
	smtpPort := listenPort(t, cfg.SMTP.Listeners[0].Address)
	adminPort := listenPort(t, cfg.Admin.Listen)

	for _, want := range []string{
		"FROM --platform=$BUILDPLATFORM golang:1.26 AS build",
		`RUN VERSION="$VERSION" sh .ci/build.sh linux "$TARGETARCH" /out`,
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"COPY packaging/container.yaml /etc/graphrelay/graphrelay.yaml",
		"VOLUME " + cfg.Queue.Dir + "\n",
		"ENV GRAPHRELAY_CONFIG=/etc/graphrelay/graphrelay.yaml\n",
		"USER nonroot\n",
		`HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/graphrelay", "health"]`,
		`ENTRYPOINT ["/graphrelay"]`,
		`CMD ["serve", "--config", "/etc/graphrelay/graphrelay.yaml"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	expose := regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindStringSubmatch(df)
	if expose == nil || !slices.Contains(strings.Fields(expose[1]), smtpPort) || !slices.Contains(strings.Fields(expose[1]), adminPort) {
		t.Errorf("EXPOSE %v must include the image's SMTP port %s and admin port %s", expose, smtpPort, adminPort)
	}
	if smtpPort == "25" {
		t.Error("a nonroot container cannot bind port 25 on every runtime")
	}

	compose := yamlDocs(t, readRepo(t, "compose.yaml"))[0]
	svc := dig(compose, "services", "graphrelay")
	if svc == nil {
		t.Fatal("compose.yaml has no graphrelay service")
	}
	ports, vols := dig(svc, "ports").([]any), dig(svc, "volumes").([]any)
	if !slices.Contains(ports, any("25:"+smtpPort)) || !slices.Contains(ports, any("127.0.0.1:8025:"+adminPort)) {
		t.Errorf("compose ports %v must publish 25 to %s and the admin port to localhost only", ports, smtpPort)
	}
	if !slices.Contains(vols, any("spool:"+cfg.Queue.Dir)) {
		t.Errorf("compose volumes %v must put the spool volume on %s", vols, cfg.Queue.Dir)
	}
	if _, ok := dig(compose, "volumes").(map[string]any)["spool"]; !ok {
		t.Error("compose.yaml declares no spool volume")
	}
	if dig(svc, "healthcheck") != nil {
		t.Error("compose.yaml must inherit the image's HEALTHCHECK, not redefine it")
	}
	grace, err := time.ParseDuration(fmt.Sprint(dig(svc, "stop_grace_period")))
	if err != nil || grace <= cfg.SMTP.ShutdownTimeout.D() {
		t.Errorf("stop_grace_period %v must exceed smtp.shutdown_timeout %s", dig(svc, "stop_grace_period"), cfg.SMTP.ShutdownTimeout.D())
	}

	// Every variable compose sets, and every one in the example env file,
	// is one graphrelay knows: Load refuses unknown GRAPHRELAY_ names.
	var env []string
	for k, v := range dig(svc, "environment").(map[string]any) {
		env = append(env, k+"="+fmt.Sprint(v))
	}
	for _, line := range strings.Split(readRepo(t, "packaging", "graphrelay.env.example"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	if dig(svc, "env_file") != "graphrelay.env" {
		t.Errorf("env_file = %v", dig(svc, "env_file"))
	}
	withEnv := loadPackaged(t, image, env)
	if withEnv.DryRunReason() != "" || withEnv.Graph.CertificateFile == "" || len(withEnv.Mailboxes) != 2 {
		t.Errorf("the example environment does not configure a tenant: %+v", withEnv.Graph)
	}

	ignore := readRepo(t, ".dockerignore")
	for _, secret := range []string{"**/*.env", "secrets", "**/*.key", "**/*.pfx", ".git"} {
		if !strings.Contains(ignore, "\n"+secret+"\n") {
			t.Errorf(".dockerignore must keep %s out of the build context", secret)
		}
	}
}

// TestBuildScriptFlags: the Dockerfile runs .ci/build.sh, so its go build
// line is the release build; it must stay static, trimmed and stamped.
func TestBuildScriptFlags(t *testing.T) {
	t.Parallel()
	sh := readRepo(t, ".ci", "build.sh")
	for _, want := range []string{
		`CGO_ENABLED=0 GOOS="$1" GOARCH="$2" go build -trimpath -buildvcs=false`,
		`-ldflags "-s -w -X main.version=$VERSION" -o "$3/$exe" ./cmd/graphrelay`,
		"linux/amd64 linux/arm64 windows/amd64",
	} {
		if !strings.Contains(sh, want) {
			t.Errorf(".ci/build.sh lacks %q", want)
		}
	}
}

// TestKubernetesManifests checks deploy/kubernetes: the documents parse, the
// probes reach the admin listener the ConfigMap configures, the spool volume
// is mounted where queue.dir points, the Service maps 25 to the SMTP
// listener and leaves the admin port unpublished, and the pod is locked down.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	dir := repoPath("deploy", "kubernetes")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	byKind := map[string][]map[string]any{}
	var resources []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range yamlDocs(t, string(b)) {
			kind, _ := d["kind"].(string)
			if kind == "" || d["apiVersion"] == nil || (kind != "Kustomization" && dig(d, "metadata", "name") == nil) {
				t.Errorf("%s: a document without apiVersion, kind or name", f)
			}
			byKind[kind] = append(byKind[kind], d)
			if kind == "Kustomization" {
				for _, r := range dig(d, "resources").([]any) {
					resources = append(resources, r.(string))
				}
			} else {
				resources = append(resources, "-"+filepath.Base(f))
			}
		}
	}
	for _, r := range resources {
		if strings.HasPrefix(r, "-") && !slices.Contains(resources, r[1:]) {
			t.Errorf("kustomization.yaml does not list %s", r[1:])
		}
	}

	cm := named(toList(byKind["ConfigMap"]), "kind", "ConfigMap")
	confText, _ := dig(cm, "data", "graphrelay.yaml").(string)
	cfg := loadPackaged(t, confText, nil)
	if cfg.DryRunReason() != "" || cfg.Delivery.Mode != config.ModeQueue {
		t.Errorf("the ConfigMap must configure a tenant and queue mode (dry-run: %q, mode %s)", cfg.DryRunReason(), cfg.Delivery.Mode)
	}
	adminListen := cfg.Admin.Listen
	if host, _, _ := net.SplitHostPort(adminListen); host != "0.0.0.0" {
		t.Errorf("admin.listen = %q: the kubelet probes the pod's address, not loopback", adminListen)
	}

	sts := byKind["StatefulSet"][0]
	pod := dig(sts, "spec", "template", "spec")
	ctr := dig(pod, "containers", 0)
	portOf := func(name string) string {
		return fmt.Sprint(dig(named(dig(ctr, "ports"), "name", name), "containerPort"))
	}
	if p := portOf("admin"); p != listenPort(t, adminListen) {
		t.Errorf("container port admin = %s, admin.listen = %s", p, adminListen)
	}
	if p := portOf("smtp"); p != listenPort(t, cfg.SMTP.Listeners[0].Address) {
		t.Errorf("container port smtp = %s, listener = %s", p, cfg.SMTP.Listeners[0].Address)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := dig(ctr, probe, "httpGet", "path"); got != path || dig(ctr, probe, "httpGet", "port") != "admin" {
			t.Errorf("%s = %v, want GET %s on the admin port", probe, dig(ctr, probe), path)
		}
	}
	mounts := dig(ctr, "volumeMounts")
	if dig(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name") != "spool" ||
		dig(named(mounts, "name", "spool"), "mountPath") != cfg.Queue.Dir {
		t.Errorf("the spool claim must be mounted at queue.dir %s: %v", cfg.Queue.Dir, mounts)
	}
	// The ConfigMap's key graphrelay.yaml, mounted as a directory, is the
	// file the container's arguments name.
	if got := dig(named(mounts, "name", "config"), "mountPath"); got != "/etc/graphrelay" ||
		!slices.Contains(dig(ctr, "args").([]any), any("/etc/graphrelay/graphrelay.yaml")) {
		t.Errorf("config mounted at %v, args %v", got, dig(ctr, "args"))
	}
	creds, _ := dig(named(mounts, "name", "credentials"), "mountPath").(string)
	for _, key := range []string{"certificate_file", "key_file"} {
		// The pod's paths are Linux paths on every test host.
		if f := fieldIn(confText, key); creds == "" || path.Dir(f) != creds {
			t.Errorf("graph.%s %s is not in the credentials mount %q", key, f, creds)
		}
	}
	if dig(named(dig(pod, "volumes"), "name", "credentials"), "secret", "secretName") == nil {
		t.Error("the credentials volume must come from a Secret")
	}
	if dig(pod, "securityContext", "runAsNonRoot") != true ||
		dig(ctr, "securityContext", "readOnlyRootFilesystem") != true ||
		dig(ctr, "securityContext", "allowPrivilegeEscalation") != false ||
		fmt.Sprint(dig(ctr, "securityContext", "capabilities", "drop")) != "[ALL]" {
		t.Errorf("pod securityContext %v, container %v", dig(pod, "securityContext"), dig(ctr, "securityContext"))
	}
	grace, _ := dig(pod, "terminationGracePeriodSeconds").(int)
	if time.Duration(grace)*time.Second <= cfg.SMTP.ShutdownTimeout.D() {
		t.Errorf("terminationGracePeriodSeconds %d must exceed smtp.shutdown_timeout", grace)
	}

	var public, headless map[string]any
	for _, s := range byKind["Service"] {
		if dig(s, "spec", "clusterIP") == "None" {
			headless = s
		} else {
			public = s
		}
	}
	if headless == nil || dig(headless, "metadata", "name") != dig(sts, "spec", "serviceName") {
		t.Error("the StatefulSet's serviceName must be a headless Service")
	}
	if public == nil {
		t.Fatal("no Service for the devices")
	}
	if p := named(dig(public, "spec", "ports"), "port", 25); p == nil || p["targetPort"] != "smtp" {
		t.Errorf("the Service must map port 25 to the smtp container port: %v", dig(public, "spec", "ports"))
	}
	for _, p := range dig(public, "spec", "ports").([]any) {
		if tp := dig(p, "targetPort"); tp == "admin" || fmt.Sprint(tp) == listenPort(t, adminListen) {
			t.Errorf("the device-facing Service publishes the admin port: %v", p)
		}
	}
	labels := dig(sts, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range dig(public, "spec", "selector").(map[string]any) {
		if labels[k] != v {
			t.Errorf("the Service selects %s=%v, which the pods do not carry", k, v)
		}
	}

	// kubectl renders the kustomization offline; it catches what a plain
	// YAML parse does not (duplicate resources, bad kustomize fields).
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		var stderr bytes.Buffer
		cmd := exec.Command(kubectl, "kustomize", dir)
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil || len(yamlDocs(t, string(out))) != 4 {
			t.Errorf("kubectl kustomize: %v\n%s", err, stderr.String())
		}
	}
}

func toList(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// fieldIn returns the value of the first "key: value" line in text.
func fieldIn(text, key string) string {
	m := regexp.MustCompile(`(?m)^\s*` + key + `:\s*(\S+)`).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}
