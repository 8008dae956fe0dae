package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/stratum once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "stratum-bin-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "stratum")
		// STRATUM_TEST_TAGS builds a negative control (internal/planted).
		cmd := exec.Command("go", "build", "-tags", os.Getenv("STRATUM_TEST_TAGS"), "-o", built.bin, "../cmd/stratum")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build stratum: %v\n%s", built.err, built.out)
	}
	return built.bin
}

// built is the stratum binary of this test process, built once: 17 tests
// run it, and each later `go build`, a cache hit, still linked for 5-10 s.
// No test writes to it or beside it. TestMain removes it.
var built struct {
	once     sync.Once
	dir, bin string
	out      []byte
	err      error
}

// TestMain runs the tests, then removes the binary they shared.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devProcess is `stratum dev` running as a real process.
type devProcess struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	done   chan error
}

func startDev(t *testing.T, bin string, args ...string) *devProcess {
	t.Helper()
	var stdout, stderr syncBuffer
	cmd := exec.Command(bin, append([]string{"--log-level", "warn", "dev"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, stdout: &stdout, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("stratum dev stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	return p
}

// stop sends SIGINT, as Ctrl-C does, and requires a clean exit.
func (p *devProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("stratum dev exited with %v after SIGINT; want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stratum dev did not stop within 30s of SIGINT")
	}
}

func waitReady(t *testing.T, urls ...string) {
	t.Helper()
	waitReadyWith(t, http.DefaultClient, urls...)
}

// waitReadyWith waits until every URL's /readyz answers 200 through hc.
func waitReadyWith(t *testing.T, hc *http.Client, urls ...string) {
	t.Helper()
	for _, u := range urls {
		Eventually(t, 60*time.Second, u+"/readyz", func() bool {
			resp, err := hc.Get(u + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
}

// run runs the stratum CLI and returns stdout, stderr and the exit code.
func run(t *testing.T, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns stdout, stderr and the exit code; failing to
// start it at all fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestDevClusterAndCLI(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	base := freePorts(t, 3)
	args := []string{"--dir", dir, "--base-port", fmt.Sprint(base), "--nodes", "3",
		"--etcd-client-port", fmt.Sprint(freePort(t)), "--etcd-peer-port", fmt.Sprint(freePort(t))}
	p := startDev(t, bin, args...)
	urls := []string{}
	for i := 0; i < 3; i++ {
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", base+i))
	}
	waitReady(t, urls...)
	Eventually(t, 10*time.Second, "one banner line per node", func() bool {
		return strings.Count(p.stdout.String(), "try: curl") == 3
	})
	ep := "--endpoint=" + urls[1]

	file := filepath.Join(t.TempDir(), "obj")
	content := strings.Repeat("stratum cli object\n", 100)
	os.WriteFile(file, []byte(content), 0o644)
	out, errOut, code := run(t, bin, "", ep, "put", file)
	oid := strings.SplitN(out, "\n", 2)[0]
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(oid) || !strings.Contains(out, "created=true") {
		t.Fatalf("put: code %d out %q err %q", code, out, errOut)
	}
	out, _, code = run(t, bin, "blob 6\x00hello\n", ep, "put", "--sha1", "-")
	if code != 0 || !strings.HasPrefix(out, "ce013625030ba8dba906f756967f9e9ca394464a\n") {
		t.Fatalf("put --sha1 -: code %d out %q", code, out)
	}
	got := filepath.Join(t.TempDir(), "got")
	if _, errOut, code := run(t, bin, "", ep, "get", "-o", got, oid); code != 0 {
		t.Fatalf("get -o: code %d err %q", code, errOut)
	}
	if b, _ := os.ReadFile(got); string(b) != content {
		t.Fatalf("get -o wrote %d bytes; want the %d put", len(b), len(content))
	}
	if out, _, code := run(t, bin, "", ep, "head", oid); code != 0 || !strings.Contains(out, fmt.Sprintf("size=%d", len(content))) {
		t.Fatalf("head: code %d out %q", code, out)
	}
	out, _, code = run(t, bin, "", ep, "cluster", "status", "--json")
	var doc struct {
		Nodes []struct {
			ID   string
			Live bool
		} `json:"nodes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Nodes) != 3 || !doc.Nodes[0].Live {
		t.Fatalf("cluster status --json: code %d out %q", code, out)
	}
	if out, _, code := run(t, bin, "", ep, "cluster", "status"); code != 0 || !strings.Contains(out, "n3") ||
		!strings.Contains(out, "LAST SCRUB") || strings.Count(out, "never") < 3 || strings.Contains(out, "unreachable") {
		t.Fatalf("cluster status: code %d out %q; want the node table and a data line per node", code, out)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
	watched, _ := exec.CommandContext(wctx, bin, ep, "cluster", "status", "--watch", "300ms").Output()
	wcancel()
	if n := strings.Count(string(watched), "ring revision"); n < 2 {
		t.Fatalf("cluster status --watch drew %d times in 2s; want several:\n%s", n, watched)
	}
	if out, _, code := run(t, bin, "", ep, "ring", "show"); code != 0 || !strings.Contains(out, "replication factor 3") {
		t.Fatalf("ring show: code %d out %q", code, out)
	}

	Eventually(t, 10*time.Second, "node list shows three ACTIVE nodes", func() bool {
		out, _, code := run(t, bin, "", ep, "node", "list")
		return code == 0 && strings.Count(out, "ACTIVE") == 3
	})
	if _, errOut, code := run(t, bin, "", ep, "node", "remove", "n2"); code == 0 || !strings.Contains(errOut, "unsafe") {
		t.Fatalf("node remove of an undrained node: code %d stderr %q; want refused as unsafe", code, errOut)
	}

	for _, extra := range [][]string{nil, {"--batch", "50"}, {"--ring", "--git-mix"}} {
		out, errOut, code := run(t, bin, "", append([]string{ep, "bench", "-n", "200", "-c", "4", "--json"}, extra...)...)
		var rep struct {
			Phases []struct {
				Phase  string
				Ops    int
				Errors int
			}
		}
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Phases) != 2 ||
			rep.Phases[0].Ops != 200 || rep.Phases[1].Ops != 200 || rep.Phases[0].Errors+rep.Phases[1].Errors != 0 {
			t.Fatalf("bench %v: code %d out %s err %s", extra, code, out, errOut)
		}
	}
	batchDir := t.TempDir()
	for i := 0; i < 30; i++ {
		os.WriteFile(filepath.Join(batchDir, fmt.Sprintf("f%d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644)
	}
	if out, errOut, code := run(t, bin, "", ep, "put", "--batch", batchDir, "--batch-size", "7"); code != 0 || strings.Count(out, "\n") != 30 || !strings.Contains(errOut, "30/30 files") {
		t.Fatalf("put --batch: code %d, %d lines, stderr %q", code, strings.Count(out, "\n"), errOut)
	}

	// Errors: one line on stderr and a non-zero exit.
	missing := strings.Repeat("0", 64)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{ep, "get", missing}, "not found"},
		{[]string{ep, "get", "NOT-AN-OID"}, "invalid object id"},
		{[]string{ep, "head", missing}, "not_found"},
		{[]string{ep, "put", "/no/such/file"}, "no such file"},
		{[]string{"--endpoint=ftp://x", "head", missing}, "Endpoint"},
		{[]string{ep, "put", "--consistency", "most", file}, "invalid consistency"},
		{[]string{ep, "node", "drain", "n9"}, "unknown node"},
		{[]string{ep, "node", "remove"}, "one argument"},
	} {
		_, errOut, code := run(t, bin, "", c.args...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, c.want) {
			t.Fatalf("stratum %v: code %d stderr %q; want non-zero and one line containing %q", c.args, code, errOut, c.want)
		}
	}

	// Ctrl-C stops cleanly; a restart on the same --dir keeps every object.
	p.stop(t)
	startDev(t, bin, args...)
	waitReady(t, urls...)
	if out, errOut, code := run(t, bin, "", "--endpoint="+urls[2], "get", "--consistency", "all", oid); code != 0 || out != content {
		t.Fatalf("get after restart: code %d err %q", code, errOut)
	}
}

// TestReadmeCurlExamples runs the README's curl block, as written, against
// `stratum dev` on its default ports.
func TestReadmeCurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed; .ci/run installs it")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)## Using it with curl.*?```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README has no curl block under '## Using it with curl'")
	}
	bin := buildBinary(t)
	startDev(t, bin, "--dir", t.TempDir())
	waitReady(t, "http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003")
	cmd := exec.CommandContext(context.Background(), "bash", "-euo", "pipefail", "-c", string(block[1]))
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README curl block failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"created": true`, "hello stratum\n", "HTTP/1.1 200 OK", "Etag: \"", `"ring_revision"`, `"existed": true`, "\n404\n"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("README curl block output lacks %q:\n%s", want, out)
		}
	}
}

// TestReadmeRefsCurlExamples runs the README's refs curl block, as written,
// against `stratum dev` on its default ports, once partitions exist.
func TestReadmeRefsCurlExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)## Refs with curl.*?```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README has no curl block under '## Refs with curl'")
	}
	bin := buildBinary(t)
	startDev(t, bin, "--dir", t.TempDir())
	waitReady(t, "http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003")
	Eventually(t, 60*time.Second, "partitions served", func() bool {
		resp, err := http.Get("http://127.0.0.1:9001/v1/repos/probe/refs")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	cmd := exec.CommandContext(context.Background(), "bash", "-euo", "pipefail", "-c", string(block[1]))
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README refs curl block failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"oid": "ce013625030ba8dba906f756967f9e9ca394464a"`, `"name": "refs/heads/main"`, `"ref_conflict"`} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("README refs curl block output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(string(out), `"oid": "ce01`) < 4 {
		t.Fatalf("want the new value in the create, get, list and conflict answers:\n%s", out)
	}
}
