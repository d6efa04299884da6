package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	binary := fs.String("binary", "", "the static linux graphrelay binary (from .ci/build.sh)")
	arch := fs.String("arch", "amd64", "the binary's GOARCH")
	config := fs.String("config", "packaging/container.yaml", "the container configuration")
	ca := fs.String("ca", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to trust for Entra and Graph")
	version := fs.String("version", "dev", "the version, for the tag and label")
	out := fs.String("out", "graphrelay-oci.tar", "the image tarball to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *binary == "" {
		return fmt.Errorf("build: -binary is required")
	}
	var data [3][]byte
	for i, p := range []string{*binary, *config, *ca} {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		data[i] = b
	}
	img, err := image(data[0], data[1], data[2], *arch, *version)
	if err != nil {
		return err
	}
	tag, err := name.NewTag("graphrelay:" + tagSafe(*version))
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(*out, tag, img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s (%s) %s\n", *out, tag, *arch, d)
	return nil
}

// tagSafe turns a git describe output into a valid tag.
func tagSafe(v string) string {
	b := []byte(v)
	for i, c := range b {
		ok := c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "dev"
	}
	return string(b)
}
