package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// inspectCmd reads an image tarball and checks what build promises: the
// configuration (non-root user, entrypoint, command, ports, health check,
// volume) and that /graphrelay is byte for byte the given binary.
func inspectCmd(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	path := fs.String("image", "graphrelay-oci.tar", "the image tarball")
	binary := fs.String("binary", "", "the binary the image must contain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	img, err := tarball.ImageFromPath(*path, nil)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	problems := checkConfig(cf.Config)
	files, err := imageFiles(img)
	if err != nil {
		return err
	}
	for _, p := range []string{binaryPath, configPath, caBundlePath, "/etc/passwd"} {
		if _, ok := files[p]; !ok {
			problems = append(problems, p+" is missing")
		}
	}
	if owner := files[spoolDir]; owner.uid != nonroot {
		problems = append(problems, fmt.Sprintf("%s is owned by %d, not nonroot", spoolDir, owner.uid))
	}
	if *binary != "" {
		want, err := os.ReadFile(*binary)
		if err != nil {
			return err
		}
		if got, w := files[binaryPath].sha256, sum(want); got != w {
			problems = append(problems, fmt.Sprintf("%s is %s, not the build %s (%s)", binaryPath, got, *binary, w))
		} else {
			fmt.Printf("binary   %s sha256:%s (same as %s)\n", binaryPath, got, *binary)
		}
	}
	d, _ := img.Digest()
	ports := make([]string, 0, len(cf.Config.ExposedPorts))
	for p := range cf.Config.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	fmt.Printf("image    %s %s/%s\nuser     %s\nentry    %s %s\nports    %s\nhealth   %s every %s\n",
		d, cf.OS, cf.Architecture, cf.Config.User, strings.Join(cf.Config.Entrypoint, " "), strings.Join(cf.Config.Cmd, " "),
		strings.Join(ports, " "), strings.Join(healthTest(cf.Config), " "), healthInterval(cf.Config))
	if len(problems) > 0 {
		return errors.New("image check failed:\n  " + strings.Join(problems, "\n  "))
	}
	fmt.Println("image check passed")
	return nil
}

func checkConfig(c v1.Config) []string {
	var p []string
	if c.User == "" || c.User == "0" || strings.HasPrefix(c.User, "0:") || strings.HasPrefix(c.User, "root") {
		p = append(p, fmt.Sprintf("user %q is root", c.User))
	}
	if !slices.Equal(c.Entrypoint, entrypoint) {
		p = append(p, fmt.Sprintf("entrypoint %q, want %q", c.Entrypoint, entrypoint))
	}
	if !slices.Equal(c.Cmd, command) {
		p = append(p, fmt.Sprintf("command %q, want %q", c.Cmd, command))
	}
	for _, port := range exposedPorts {
		if _, ok := c.ExposedPorts[port]; !ok {
			p = append(p, "port "+port+" is not exposed")
		}
	}
	if len(c.ExposedPorts) != len(exposedPorts) {
		p = append(p, fmt.Sprintf("%d ports exposed, want %d", len(c.ExposedPorts), len(exposedPorts)))
	}
	if c.Healthcheck == nil || !slices.Equal(c.Healthcheck.Test, healthcheck.Test) || c.Healthcheck.Interval != healthcheck.Interval {
		p = append(p, fmt.Sprintf("health check %+v, want %+v", c.Healthcheck, healthcheck))
	}
	if _, ok := c.Volumes[spoolDir]; !ok {
		p = append(p, spoolDir+" is not a volume")
	}
	if !slices.Contains(c.Env, "GRAPHRELAY_CONFIG="+configPath) {
		p = append(p, "GRAPHRELAY_CONFIG is not set")
	}
	return p
}

func healthTest(c v1.Config) []string {
	if c.Healthcheck == nil {
		return []string{"none"}
	}
	return c.Healthcheck.Test
}

func healthInterval(c v1.Config) string {
	if c.Healthcheck == nil {
		return "-"
	}
	return c.Healthcheck.Interval.String()
}

type entry struct {
	uid    int
	sha256 string
}

// imageFiles lists the flattened filesystem with each file's owner and
// digest.
func imageFiles(img v1.Image) (map[string]entry, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		e := entry{uid: h.Uid}
		if h.Typeflag == tar.TypeReg {
			hash := sha256.New()
			if _, err := io.Copy(hash, tr); err != nil {
				return nil, err
			}
			e.sha256 = hex.EncodeToString(hash.Sum(nil))
		}
		files["/"+strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = e
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
