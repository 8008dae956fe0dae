package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitTimeout bounds every git command a test runs.
const gitTimeout = 2 * time.Minute

// gitEnv is the environment of stock git in these tests: no user or
// system configuration, no terminal prompt (a missing credential fails
// instead of waiting), fixed identities and dates.
func gitEnv(home string) []string {
	env := []string{"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"),
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=",
		"GIT_AUTHOR_NAME=A U Thor", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=C O Mitter", "GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// gitRun runs git in dir and returns its stdout and stderr; it never takes
// longer than gitTimeout.
func gitRun(t testing.TB, dir string, stdin []byte, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(filepath.Dir(dir))
	cmd.WaitDelay = 5 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("git %s: still running after %s: %w", strings.Join(args, " "), gitTimeout, ctx.Err())
	}
	return out.String(), errb.String(), err
}

// mustGit runs git and fails the test if it fails.
func mustGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := gitRun(t, dir, nil, args...)
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, errOut)
	}
	return out
}

// gitWorkdir returns a new directory for a repository, with a home of its
// own beside it (gitEnv).
func gitWorkdir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// genRepo builds a repository with git fast-import: commits commits on
// main, each changing three files (one binary), a branch "feature" off
// main's middle with commits of its own merged back into main, an
// annotated tag v1 and a lightweight tag light. With commits = 60 that is
// about 450 objects.
func genRepo(t testing.TB, commits int) string {
	t.Helper()
	dir := gitWorkdir(t, "src")
	mustGit(t, dir, "init", "-q", "-b", "main")
	var s bytes.Buffer
	mark := 0
	blob := func(data []byte) int {
		mark++
		fmt.Fprintf(&s, "blob\nmark :%d\ndata %d\n%s\n", mark, len(data), data)
		return mark
	}
	commit := func(ref string, parents []int, i int, files map[string]int) int {
		mark++
		fmt.Fprintf(&s, "commit %s\nmark :%d\ncommitter C O Mitter <c@example.com> %d +0000\ndata <<EOF\ncommit %d on %s\nEOF\n", ref, mark, 1700000000+i, i, ref)
		for j, p := range parents {
			fmt.Fprintf(&s, "%s :%d\n", map[bool]string{true: "from", false: "merge"}[j == 0], p)
		}
		for path, b := range files {
			fmt.Fprintf(&s, "M 100644 :%d %s\n", b, path)
		}
		return mark
	}
	var main, fork, feature int
	for i := 0; i < commits; i++ {
		files := map[string]int{
			fmt.Sprintf("src/pkg%d/file%d.txt", i%5, i%7): blob(fmt.Appendf(nil, "line %d\n%s", i, strings.Repeat("text ", i))),
			fmt.Sprintf("docs/notes%d.md", i%4):           blob(fmt.Appendf(nil, "# note %d\n", i)),
			"bin/data.bin":                                blob(append([]byte{0, 1, 2, 0xff, byte(i)}, bytes.Repeat([]byte{byte(i), 0}, 50)...)),
		}
		var parents []int
		if main != 0 {
			parents = append(parents, main)
		}
		if i == commits*3/4 && feature != 0 {
			parents = append(parents, feature)
		}
		main = commit("refs/heads/main", parents, i, files)
		if i == commits/2 {
			fork = main
		}
		if i > commits/2 && i < commits*3/4 {
			from := []int{fork}
			if feature != 0 {
				from = []int{feature}
			}
			feature = commit("refs/heads/feature", from, i, map[string]int{fmt.Sprintf("feature/f%d.txt", i): blob(fmt.Appendf(nil, "feature %d\n", i))})
		}
	}
	fmt.Fprintf(&s, "tag v1\nfrom :%d\ntagger T Agger <t@example.com> 1700000000 +0000\ndata 12\nrelease one\n\n", fork)
	fmt.Fprintf(&s, "reset refs/tags/light\nfrom :%d\n\n", main)
	if _, errOut, err := gitRun(t, dir, s.Bytes(), "fast-import", "--quiet"); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, errOut)
	}
	mustGit(t, dir, "reset", "-q", "--hard", "main")
	return dir
}

// gitRefs lists a repository's refs under prefixes, "oid name" per line.
func gitRefs(t testing.TB, dir string, prefixes ...string) string {
	t.Helper()
	return mustGit(t, dir, append([]string{"for-each-ref", "--format=%(objectname) %(refname)"}, prefixes...)...)
}

// gitURL is repo's clone URL on a node, with a token as the basic-auth
// password when token is set.
func gitURL(c *Cluster, i int, repo, token string) string {
	if token == "" {
		return c.URL(i) + "/git/" + repo
	}
	return "http://git:" + token + "@" + c.Nodes[i].Addr + "/git/" + repo
}

// addCommit commits one new file on the checked-out branch of dir.
func addCommit(t testing.TB, dir, name, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, dir, "add", name)
	mustGit(t, dir, "commit", "-q", "-m", "add "+name)
	return strings.TrimSpace(mustGit(t, dir, "rev-parse", "HEAD"))
}
