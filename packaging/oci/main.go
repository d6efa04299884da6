// Command oci builds graphrelay's container image without a container
// daemon, and inspects the result. It lives in its own module so that the
// main module does not carry go-containerregistry.
//
//	go run . build -binary ../../dist/linux-amd64/graphrelay -arch amd64 \
//	    -config ../container.yaml -version v1.2.3 -out graphrelay.tar
//	go run . inspect -image graphrelay.tar -binary ../../dist/linux-amd64/graphrelay
//	go run . export -image graphrelay.tar -dir rootfs   # then chroot rootfs /graphrelay
//
// The image matches the Dockerfile: the static binary at /graphrelay on an
// otherwise empty base with CA certificates and a nonroot (65532) user, the
// container configuration at /etc/graphrelay/graphrelay.yaml, the spool
// volume owned by nonroot, the same ports, health check, entrypoint and
// command. The tarball is what "docker load" and "podman load" read.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oci build|inspect|export [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCmd(os.Args[2:])
	case "inspect":
		err = inspectCmd(os.Args[2:])
	case "export":
		err = exportCmd(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "oci: unknown command %q (build, inspect or export)\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oci:", err)
		os.Exit(1)
	}
}
