package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A clone of the repository with nothing beside it must pass `make test`.
// TestNothingOutsideTheRepository reads every tracked test file, script,
// Makefile and CI file and fails on a path that leaves the repository: a
// relative path that climbs above the root (counted from the file's own
// folder), or a name of the developers' workplace ("shared/", "/work/").
// A line that names an optional outside tool says so with the marker
// "optional-outside" and must run without it (scripts/bench-cluster.sh and
// the benchmark ceiling). Path-traversal attack strings that tests send to
// a server ("../../etc/passwd") are input, not paths the test opens.

// climb matches a run of parent steps, in shell ("../../x") or Go
// (filepath.Join("..", "..", "x")) spelling.
var climb = regexp.MustCompile(`(?:\.\./)+|(?:"\.\."\s*,\s*)+`)

// workplace matches names of the developers' workplace that a clone lacks.
var workplace = regexp.MustCompile(`(?:^|[^A-Za-z0-9_])(?:shared/(?:testdata|tools)|/work/)`)

// outsidePath reports why line, in a file whose folder is depth levels
// below the repository root, refers to a path outside it ("" if it does not).
func outsidePath(line string, depth int) string {
	if strings.Contains(line, "optional-outside") {
		return ""
	}
	if m := workplace.FindString(line); m != "" {
		return "names the workplace: " + strings.TrimSpace(m)
	}
	if strings.Contains(line, "etc/passwd") {
		return ""
	}
	for _, m := range climb.FindAllString(line, -1) {
		if n := strings.Count(m, ".."); n > depth {
			return "climbs " + strings.Repeat("../", n) + " from a folder " + strings.Repeat("x/", depth)
		}
	}
	return ""
}

func TestOutsidePathRules(t *testing.T) {
	f := func(line string, depth int, want bool) {
		t.Helper()
		if got := outsidePath(line, depth) != ""; got != want {
			t.Fatalf("outsidePath(%q, %d) = %q; want outside=%t", line, depth, outsidePath(line, depth), want)
		}
	}
	f(`os.ReadFile("../../shared/testdata/sha1-collision/x")`, 1, true)
	f(`os.ReadFile("../testdata/sha1-collision/x")`, 1, false)
	f(`filepath.Join("..", "..", "testdata", "x")`, 2, false)
	f(`filepath.Join("..", "..", "..", "shared", "x")`, 2, true)
	f(`cd "$(dirname "$0")/.."`, 1, false)
	f(`../shared/tools/ceiling/run.sh`, 1, true)
	f(`[ -x ../shared/tools/ceiling/run.sh ] # optional-outside`, 1, false)
	f(`cat /work/x`, 0, true)
	f(`// see ../../x`, 3, false)
	f(`"../../etc/passwd"`, 0, false)
}

// TestNothingOutsideTheRepository applies outsidePath to every tracked
// test file, script and build file.
func TestNothingOutsideTheRepository(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	checked := 0
	for _, name := range strings.Fields(string(out)) {
		if !needsSelfContained(name) || name == "tests/selfcontained_test.go" {
			continue
		}
		data, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		depth := strings.Count(name, "/")
		for i, line := range strings.Split(string(data), "\n") {
			if why := outsidePath(line, depth); why != "" {
				t.Errorf("%s:%d %s: %s", name, i+1, why, strings.TrimSpace(line))
			}
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("checked %d files; want the repository's tests and scripts", checked)
	}
}

// needsSelfContained says which files a fresh clone runs: tests, scripts,
// the Makefile and CI.
func needsSelfContained(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".sh") ||
		base == "Makefile" || strings.HasPrefix(name, ".ci/") || strings.HasPrefix(name, "internal/planted/")
}
