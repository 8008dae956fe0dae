package tests

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
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
