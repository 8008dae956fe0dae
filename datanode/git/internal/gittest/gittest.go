// Package gittest runs the stock git of the machine in a temporary
// repository, for tests that compare the datanode/git packages with git.
package gittest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// Repo is a git repository in a t.TempDir().
type Repo struct {
	t   testing.TB
	Dir string
}

// New initialises an empty repository (bare if bare is true).
func New(t testing.TB, bare bool) *Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	r := &Repo{t: t, Dir: t.TempDir()}
	args := []string{"init", "-q", "-b", "main"}
	if bare {
		args = append(args, "--bare")
	}
	r.Git(nil, args...)
	return r
}

// Exec runs git with stdin, returning stdout, stderr and the error.
func (r *Repo) Exec(stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(cmd.Environ(),
		"GIT_AUTHOR_NAME=A U Thor", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=C O Mitter", "GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_AUTHOR_DATE=1700000000 +0100", "GIT_COMMITTER_DATE=1700000100 -0230",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// Git runs git and fails the test if it fails; it returns stdout.
func (r *Repo) Git(stdin []byte, args ...string) []byte {
	r.t.Helper()
	o, e, err := r.Exec(stdin, args...)
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, e)
	}
	return o
}

// Line runs git and returns its stdout without the trailing newline.
func (r *Repo) Line(stdin []byte, args ...string) string {
	r.t.Helper()
	return strings.TrimSpace(string(r.Git(stdin, args...)))
}
