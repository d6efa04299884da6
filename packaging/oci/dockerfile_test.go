package main

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The image this program builds and the one the Dockerfile builds must be
// the same to their users: ports, health check, user, entrypoint, command,
// configuration path and volume.
func TestMatchesDockerfile(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	final := map[string]string{} // instruction -> arguments, last stage only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, args, _ := strings.Cut(line, " ")
		if instr == "FROM" {
			final = map[string]string{}
		}
		final[instr] = args
	}
	jsonArgs := func(instr string) []string {
		t.Helper()
		var v []string
		if err := json.Unmarshal([]byte(final[instr]), &v); err != nil {
			t.Fatalf("%s %s: %v", instr, final[instr], err)
		}
		return v
	}
	if got := jsonArgs("ENTRYPOINT"); !slices.Equal(got, entrypoint) {
		t.Errorf("ENTRYPOINT %q, image %q", got, entrypoint)
	}
	if got := jsonArgs("CMD"); !slices.Equal(got, command) {
		t.Errorf("CMD %q, image %q", got, command)
	}
	var ports []string
	for _, p := range strings.Fields(final["EXPOSE"]) {
		ports = append(ports, p+"/tcp")
	}
	if !slices.Equal(ports, exposedPorts) {
		t.Errorf("EXPOSE %q, image %q", ports, exposedPorts)
	}
	if final["USER"] != "nonroot" {
		t.Errorf("USER %q, want nonroot (%d)", final["USER"], nonroot)
	}
	if final["VOLUME"] != spoolDir {
		t.Errorf("VOLUME %q, image %q", final["VOLUME"], spoolDir)
	}
	if final["ENV"] != "GRAPHRELAY_CONFIG="+configPath {
		t.Errorf("ENV %q, image GRAPHRELAY_CONFIG=%s", final["ENV"], configPath)
	}
	hc := final["HEALTHCHECK"]
	opts, cmd, ok := strings.Cut(hc, " CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc)
	}
	var test []string
	if err := json.Unmarshal([]byte(cmd), &test); err != nil || !slices.Equal(append([]string{"CMD"}, test...), healthcheck.Test) {
		t.Errorf("HEALTHCHECK CMD %q, image %q", cmd, healthcheck.Test)
	}
	for _, o := range strings.Fields(opts) {
		k, v, _ := strings.Cut(strings.TrimPrefix(o, "--"), "=")
		var want time.Duration
		switch k {
		case "interval":
			want = healthcheck.Interval
		case "timeout":
			want = healthcheck.Timeout
		case "start-period":
			want = healthcheck.StartPeriod
		case "retries":
			if v != "3" || healthcheck.Retries != 3 {
				t.Errorf("retries %s, image %d", v, healthcheck.Retries)
			}
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d != want {
			t.Errorf("HEALTHCHECK --%s=%s, image %v", k, v, want)
		}
	}
}

// The layer is the same bytes for the same inputs, so rebuilding a release
// gives the same image digest.
func TestImageIsReproducible(t *testing.T) {
	var digests []string
	for range 2 {
		img, err := image([]byte("binary"), []byte("config"), []byte("ca"), "amd64", "v1")
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same inputs: %s and %s", digests[0], digests[1])
	}
}
