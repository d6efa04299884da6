package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's fixed facts, shared by build and inspect so that inspect
// checks what build promises. They follow the Dockerfile.
const (
	binaryPath   = "/graphrelay"
	configPath   = "/etc/graphrelay/graphrelay.yaml"
	spoolDir     = "/var/spool/graphrelay"
	caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
	nonroot      = 65532
)

var (
	exposedPorts = []string{"2525/tcp", "2587/tcp", "2465/tcp", "8025/tcp"}
	entrypoint   = []string{binaryPath}
	command      = []string{"serve", "--config", configPath}
	healthcheck  = v1.HealthConfig{
		Test:        []string{"CMD", binaryPath, "health"},
		Interval:    30 * time.Second,
		Timeout:     5 * time.Second,
		StartPeriod: 30 * time.Second,
		Retries:     3,
	}
)

// file is one entry of the image's single layer.
type file struct {
	path     string
	mode     int64
	uid, gid int
	data     []byte // nil for a directory
}

// layerTar writes files as a tar stream. Every time is the epoch, so the
// same inputs give the same layer digest.
func layerTar(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path[1:], Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if f.data == nil {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if f.data != nil {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// image assembles the image from the binary, the container configuration
// and the CA bundle.
func image(binary, config, caBundle []byte, arch, version string) (v1.Image, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot)
	files := []file{
		{path: "/etc", mode: 0o755},
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, data: []byte(group)},
		{path: "/etc/ssl", mode: 0o755},
		{path: "/etc/ssl/certs", mode: 0o755},
		{path: caBundlePath, mode: 0o644, data: caBundle},
		{path: "/etc/graphrelay", mode: 0o755},
		{path: configPath, mode: 0o644, data: config},
		{path: binaryPath, mode: 0o755, data: binary},
		{path: "/home", mode: 0o755},
		{path: "/home/nonroot", mode: 0o700, uid: nonroot, gid: nonroot},
		{path: "/tmp", mode: 0o1777},
		{path: "/var", mode: 0o755},
		{path: "/var/spool", mode: 0o755},
		// A new named volume is initialised from the image, owner
		// included, so the daemon can write to it.
		{path: spoolDir, mode: 0o700, uid: nonroot, gid: nonroot},
	}
	data, err := layerTar(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	ports := map[string]struct{}{}
	for _, p := range exposedPorts {
		ports[p] = struct{}{}
	}
	hc := healthcheck
	cfg := v1.Config{
		User:         fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint:   entrypoint,
		Cmd:          command,
		Env:          []string{"GRAPHRELAY_CONFIG=" + configPath, "SSL_CERT_FILE=" + caBundlePath},
		ExposedPorts: ports,
		Volumes:      map[string]struct{}{spoolDir: {}},
		WorkingDir:   "/",
		Healthcheck:  &hc,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "graphrelay",
			"org.opencontainers.image.version": version,
			"org.opencontainers.image.source":  "https://github.com/graphrelay/graphrelay",
		},
	}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.ConfigFile(img, mustConfigFile(img, arch))
}

func mustConfigFile(img v1.Image, arch string) *v1.ConfigFile {
	cf, err := img.ConfigFile()
	if err != nil {
		panic(err) // the image was built in memory just now
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	return cf
}
