package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// The status page loads in a real browser (headless Chromium) against a
// live cluster and shows its nodes.
func TestStatusPageInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; .ci/run installs it (apt-get install chromium)")
	}
	c := MustStartCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", c.URL(0)+"/ui/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	if strings.Count(dom, `<tr class="node">`) != 3 {
		t.Fatalf("rendered page has %d node rows; want 3:\n%.2000s", strings.Count(dom, `<tr class="node">`), dom)
	}
	for _, want := range []string{"stratum node n1", "<td>n2</td>", "<td>n3</td>", `class="ACTIVE"`} {
		if !strings.Contains(dom, want) {
			t.Fatalf("rendered page lacks %q:\n%.2000s", want, dom)
		}
	}
}

// The status page's charts, in headless Chromium: after object traffic the
// request, latency and bytes-per-node charts are drawn with data from the
// node's sample ring (a sample every 5 s). A screenshot is saved in the
// test's temp directory.
func TestStatusPageChartsInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; .ci/run installs it (apt-get install chromium)")
	}
	c := MustStartCluster(t, 3, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	done := make(chan struct{})
	go func() { // traffic until the charts are checked
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			rec, err := c.Client(0).PutBytes(ctx, randomBytes(int64(7000+i), 4096), api.SHA256, api.Quorum)
			if err == nil {
				c.Client(0).GetBytes(ctx, api.MustParseOID(rec.OID), api.Quorum)
			}
		}
	}()
	defer func() { cancel(); <-done }()
	attr := func(page, chart, series, name string) float64 {
		svg := regexp.MustCompile(`(?s)<svg id="chart-` + chart + `".*?</svg>`).FindString(page)
		m := regexp.MustCompile(`data-series="` + series + `" data-points="(\d+)" data-last="([^"]+)"`).FindStringSubmatch(svg)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[map[string]int{"points": 1, "last": 2}[name]], 64)
		return v
	}
	ready := func(page string) bool {
		return attr(page, "requests", "PUT", "points") >= 2 && attr(page, "requests", "PUT", "last") > 0 &&
			attr(page, "requests", "GET", "last") > 0 && attr(page, "latency", "PUT", "last") > 0 &&
			attr(page, "bytes", "n1", "last") > 0 && attr(page, "bytes", "n2", "last") > 0 && attr(page, "bytes", "n3", "last") > 0
	}
	var page string
	Eventually(t, 40*time.Second, "charts with data on /ui/", func() bool {
		page = httpBody(t, c.URL(0)+"/ui/")
		return ready(page)
	})
	shot := filepath.Join(t.TempDir(), "status-page.png")
	bctx, bcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer bcancel()
	out, err := exec.CommandContext(bctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", c.URL(0)+"/ui/").Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	dom := string(out)
	if n := strings.Count(dom, `<svg id="chart-`); n != 5 {
		t.Fatalf("rendered page has %d charts; want 5:\n%.3000s", n, dom)
	}
	if !ready(dom) {
		t.Fatalf("charts in Chromium lack data: PUT points %v, PUT/s %v, GET/s %v, PUT p99 ms %v, bytes n1 %v n2 %v n3 %v:\n%.3000s",
			attr(dom, "requests", "PUT", "points"), attr(dom, "requests", "PUT", "last"), attr(dom, "requests", "GET", "last"),
			attr(dom, "latency", "PUT", "last"), attr(dom, "bytes", "n1", "last"), attr(dom, "bytes", "n2", "last"), attr(dom, "bytes", "n3", "last"), dom)
	}
	if err := exec.CommandContext(bctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--window-size=1280,1400", "--screenshot="+shot, c.URL(0)+"/ui/").Run(); err != nil {
		t.Fatalf("chromium --screenshot: %v", err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %s: %v; want a PNG of at least 10 kB", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
