package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/config"
)

// TestKubernetesClusterManifests checks deploy/kubernetes/cluster: every
// document is listed in the kustomization, the relays' configuration
// loads with the jetstream backend, its NATS URLs are the pods of the
// NATS StatefulSet on its client port, the NATS servers route to each
// other and enable JetStream, the StatefulSet has as many servers as the
// stream has replicas, and the relays' readiness is /readyz.
func TestKubernetesClusterManifests(t *testing.T) {
	t.Parallel()
	dir := repoPath("deploy", "kubernetes", "cluster")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	byKind := map[string][]map[string]any{}
	var listed, present []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range yamlDocs(t, string(b)) {
			kind, _ := d["kind"].(string)
			byKind[kind] = append(byKind[kind], d)
			if kind == "Kustomization" {
				for _, r := range dig(d, "resources").([]any) {
					listed = append(listed, r.(string))
				}
			} else if !slices.Contains(present, filepath.Base(f)) {
				present = append(present, filepath.Base(f))
			}
		}
	}
	for _, f := range present {
		if !slices.Contains(listed, f) {
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}

	var relayCM, natsCM map[string]any
	for _, cm := range byKind["ConfigMap"] {
		if dig(cm, "data", "graphrelay.yaml") != nil {
			relayCM = cm
		} else {
			natsCM = cm
		}
	}
	cfg := loadPackaged(t, dig(relayCM, "data", "graphrelay.yaml").(string), nil)
	j := cfg.Queue.JetStream
	if cfg.Queue.Backend != config.BackendJetStream || j.Replicas != 3 {
		t.Fatalf("backend %q, replicas %d; want jetstream with 3", cfg.Queue.Backend, j.Replicas)
	}
	natsSTS := named(toList(byKind["StatefulSet"]), "kind", "StatefulSet")
	name, svc := dig(natsSTS, "metadata", "name"), dig(natsSTS, "spec", "serviceName")
	if n := dig(natsSTS, "spec", "replicas"); n != j.Replicas {
		t.Errorf("NATS StatefulSet has %v servers; the stream has %d replicas", n, j.Replicas)
	}
	natsCtr := dig(natsSTS, "spec", "template", "spec", "containers", 0)
	clientPort := fmt.Sprint(dig(named(dig(natsCtr, "ports"), "name", "client"), "containerPort"))
	routePort := fmt.Sprint(dig(named(dig(natsCtr, "ports"), "name", "cluster"), "containerPort"))
	natsConf, _ := dig(natsCM, "data", "nats.conf").(string)
	for i := range j.Replicas {
		host := fmt.Sprintf("%s-%d.%s", name, i, svc)
		if u, err := url.Parse(j.URLs[i]); err != nil || u.Host != host+":"+clientPort {
			t.Errorf("queue.jetstream.urls[%d] = %s; want nats://%s:%s", i, j.URLs[i], host, clientPort)
		}
		if route := "nats://" + host + ":" + routePort; !strings.Contains(natsConf, route) {
			t.Errorf("nats.conf does not route to %s", route)
		}
	}
	if !strings.Contains(natsConf, "jetstream {") || !strings.Contains(natsConf, "server_name: $POD_NAME") {
		t.Error("nats.conf must enable JetStream and name each server after its pod")
	}

	dep := byKind["Deployment"][0]
	ctr := dig(dep, "spec", "template", "spec", "containers", 0)
	if dig(ctr, "readinessProbe", "httpGet", "path") != "/readyz" ||
		fmt.Sprint(dig(named(dig(ctr, "ports"), "name", "admin"), "containerPort")) != listenPort(t, cfg.Admin.Listen) {
		t.Errorf("the relays' readiness must be /readyz on admin.listen %s: %v", cfg.Admin.Listen, dig(ctr, "readinessProbe"))
	}
	if dig(named(dig(ctr, "volumeMounts"), "name", "staging"), "mountPath") != cfg.Queue.Dir {
		t.Errorf("queue.dir %s (where bodies are staged) must be a writable mount", cfg.Queue.Dir)
	}
}
