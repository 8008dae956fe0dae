package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// TestPrometheusAlertsOnALiveCluster runs Debian's prometheus against three
// stratum data node processes with the repository's alert rules (their
// `for:` durations shortened, scrapes every second), waits until every
// target is up, kills one node and sees StratumNodeDown fire for it through
// Prometheus's HTTP API. It also checks that promtool accepts the shipped
// rules and config, and that every stratum_* metric the rules and the
// Grafana dashboard use is exported by a live node.
func TestPrometheusAlertsOnALiveCluster(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install prometheus): the alert rules are not tested against a live cluster")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian's prometheus package brings it)")
	}
	for _, args := range [][]string{{"check", "rules", "../deploy/prometheus/alerts.yml"}, {"check", "config", "../deploy/prometheus/prometheus.yml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	dashboard, err := os.ReadFile("../deploy/grafana/stratum.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dashboard) {
		t.Fatal("deploy/grafana/stratum.json is not valid JSON")
	}

	bin := buildBinary(t)
	dir := t.TempDir()
	etcd := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	startProcess(t, bin, "controlplane", "--name", "a", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcd, "--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	var addrs, urls []string
	var nodes []*exec.Cmd
	for i := 1; i <= 3; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		addrs, urls = append(addrs, addr), append(urls, "http://"+addr)
		nodes = append(nodes, startProcess(t, bin, "datanode", "--id", fmt.Sprintf("n%d", i), "--listen", addr,
			"--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i)), "--etcd", etcd, "--lease-ttl", "2s", "--auth=false"))
	}
	waitReady(t, urls...)
	for i := range 20 { // traffic, so that the request and replica histograms have series
		data := randomBytes(int64(500+i), 2048)
		oid, _ := api.Digest(api.SHA256, data)
		req, _ := http.NewRequest(http.MethodPut, urls[i%3]+api.PathObjects+oid.String(), bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("put %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		if resp, err := http.Get(urls[(i+1)%3] + api.PathObjects + oid.String()); err == nil {
			resp.Body.Close()
		}
	}

	exported := map[string]bool{}
	for _, line := range strings.Split(httpBody(t, urls[0]+"/metrics"), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			exported[line[:strings.IndexAny(line, "{ ")]] = true
		}
	}
	used := regexp.MustCompile(`\bstratum_[a-z_]+\b`).FindAllString(string(rules)+string(dashboard), -1)
	slices.Sort(used)
	for _, name := range slices.Compact(used) {
		if !exported[name] {
			t.Errorf("the rules or the dashboard use %s; a live node's /metrics does not export it", name)
		}
	}
	if len(used) < 15 {
		t.Fatalf("found %d metric uses in the rules and the dashboard; want at least 15 (is the regexp wrong?)", len(used))
	}

	// A test copy: scrape and evaluate every second, every for: 2s.
	testRules := regexp.MustCompile(`for: \S+`).ReplaceAll(rules, []byte("for: 2s"))
	os.WriteFile(filepath.Join(dir, "alerts.yml"), testRules, 0o644)
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\n"+
		"scrape_configs:\n  - job_name: stratum\n    static_configs:\n      - targets: [%q, %q, %q]\n", addrs[0], addrs[1], addrs[2])
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644)
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config on the test copy: %v\n%s", err, out)
	}
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startProcess(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+web)
	promAPI := "http://" + web + "/api/v1/"

	Eventually(t, 30*time.Second, "prometheus sees all 3 targets up", func() bool {
		var targets struct {
			Data struct {
				ActiveTargets []struct{ Health string } `json:"activeTargets"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(httpBody(t, promAPI+"targets")), &targets) != nil {
			return false
		}
		up := 0
		for _, tg := range targets.Data.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
		}
		return up == 3
	})
	if firing := alerts(t, promAPI, "StratumNodeDown"); len(firing) != 0 {
		t.Fatalf("StratumNodeDown fires for %v with every node up; want none", firing)
	}

	nodes[2].Process.Kill()
	Eventually(t, 30*time.Second, "StratumNodeDown firing for "+addrs[2], func() bool {
		return slices.Equal(alerts(t, promAPI, "StratumNodeDown"), []string{addrs[2]})
	})
}

// alerts returns the instances for which the named alert is firing.
func alerts(t *testing.T, promAPI, name string) []string {
	var doc struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(httpBody(t, promAPI+"alerts")), &doc); err != nil {
		return nil
	}
	var out []string
	for _, a := range doc.Data.Alerts {
		if a.Labels["alertname"] == name && a.State == "firing" {
			out = append(out, a.Labels["instance"])
		}
	}
	return out
}

func httpBody(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
