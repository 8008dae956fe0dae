package api

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// refNameCases is shared by TestValidateRefName, the differential test
// against git check-ref-format and the seed corpus of FuzzValidateRefName.
var refNameCases = []struct {
	name string
	ok   bool
}{
	{"refs/heads/main", true},
	{"refs/tags/v1.0.0", true},
	{"refs/heads/feature/x-y_z", true},
	{"refs/x", true},
	{"refs/heads/a./b", true},    // only the last character may not be '.'
	{"refs/heads/a@b", true},     // '@' alone is fine, "@{" is not
	{"refs/heads/@", true},       // only the whole name "@" is refused
	{"refs/heads/a{b}", true},    // braces alone are fine
	{"refs/heads/x.locks", true}, // ".lock" only as a suffix
	{"refs/heads/-x", true},
	{"refs/heads/refs/tags", true},
	{"refs/heads/\u00e9t\u00e9", true}, // non-ASCII is allowed
	{"refs/heads/\xff", true},          // so is invalid UTF-8, as in Git
	{"refs/heads/" + strings.Repeat("a", MaxRefNameLen-len("refs/heads/")), true},

	{"refs/heads/" + strings.Repeat("a", MaxRefNameLen-len("refs/heads/")+1), false},
	{"", false},
	{"@", false},
	{"HEAD", false},
	{"heads/main", false}, // git accepts it; stratum wants the full name
	{"refs", false},
	{"refs/", false},
	{"/refs/heads/main", false},
	{"refs/heads/main/", false},
	{"refs//heads", false},
	{"refs/heads//main", false},
	{"refs/heads/.hidden", false},
	{"refs/.heads/main", false},
	{"refs/heads/..", false},
	{"refs/heads/a..b", false},
	{"refs/heads/main.", false},
	{"refs/heads/main.lock", false},
	{"refs/heads/x.lock/y", false},
	{"refs/heads/@{u}", false},
	{"refs/heads/a@{1}", false},
	{"refs/heads/a b", false},
	{"refs/heads/a~1", false},
	{"refs/heads/a^", false},
	{"refs/heads/a:b", false},
	{"refs/heads/a?", false},
	{"refs/heads/a*", false},
	{"refs/heads/a[0]", false},
	{`refs/heads/a\b`, false},
	{"refs/heads/a\tb", false},
	{"refs/heads/a\nb", false},
	{"refs/heads/a\x7f", false},
	{"refs/heads/a\x00b", false},
}

func TestValidateRefName(t *testing.T) {
	f := func(in string, wantErr bool) {
		t.Helper()
		err := ValidateRefName(in)
		if (err != nil) != wantErr {
			t.Fatalf("ValidateRefName(%.80q) = %v; want error %t", in, err, wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidRefName) {
			t.Fatalf("ValidateRefName(%.80q) = %v; want it to wrap ErrInvalidRefName", in, err)
		}
	}
	for _, c := range refNameCases {
		f(c.name, !c.ok)
	}
}

// TestValidateRefNameMatchesGit runs git check-ref-format on every case that
// the rules stratum adds (the "refs/" prefix, the length bound) do not
// decide, so "exactly Git's rules" is checked against Git itself.
func TestValidateRefNameMatchesGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not on PATH")
	}
	f := func(in string) {
		t.Helper()
		gitOK := exec.Command(git, "check-ref-format", in).Run() == nil
		if ours := ValidateRefName(in) == nil; ours != gitOK {
			t.Fatalf("ValidateRefName(%.80q) accepts: %t; git check-ref-format accepts: %t", in, ours, gitOK)
		}
	}
	for _, c := range refNameCases {
		if strings.HasPrefix(c.name, "refs/") && len(c.name) <= MaxRefNameLen && !strings.Contains(c.name, "\x00") {
			f(c.name)
		}
	}
}

var repoCases = []struct {
	name string
	ok   bool
}{
	{"a", true},
	{"org/proj.git", true},
	{"Org/Proj-1_x.y", true},
	{"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", true}, // 16 segments
	{"refsx/refs.git/my-refs", true},
	{"REFS", true}, // only the exact segment "refs" is reserved
	{strings.Repeat("a", MaxRepoLen), true},

	{"", false},
	{strings.Repeat("a", MaxRepoLen+1), false},
	{"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", false}, // 17 segments
	{"/org/x", false},
	{"org/x/", false},
	{"org//x", false},
	{".", false},
	{"..", false},
	{"org/../x", false},
	{"org/./x", false},
	{"org/.hidden", false},
	{"refs", false},
	{"org/refs", false},
	{"org/refs/x", false},
	{"org x", false},
	{"org/x:y", false},
	{"org/x@y", false},
	{"org/x%2fy", false},
	{`org\x`, false},
	{"org/x\x00", false},
	{"org/\u00e9", false},
}

func TestValidateRepo(t *testing.T) {
	f := func(in string, wantErr bool) {
		t.Helper()
		err := ValidateRepo(in)
		if (err != nil) != wantErr {
			t.Fatalf("ValidateRepo(%.80q) = %v; want error %t", in, err, wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidRepo) {
			t.Fatalf("ValidateRepo(%.80q) = %v; want it to wrap ErrInvalidRepo", in, err)
		}
	}
	for _, c := range repoCases {
		f(c.name, !c.ok)
	}
}

func TestParseRepoPath(t *testing.T) {
	f := func(in, wantRepo, wantRef string, wantErr error) {
		t.Helper()
		repo, ref, err := ParseRepoPath(in)
		if repo != wantRepo || ref != wantRef || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseRepoPath(%q) = %q, %q, %v; want %q, %q, %v", in, repo, ref, err, wantRepo, wantRef, wantErr)
		}
	}
	f("org/proj.git/refs", "org/proj.git", "", nil)
	f("org/proj.git/refs/", "org/proj.git", "", nil)
	f("org/proj.git/refs/heads/main", "org/proj.git", "refs/heads/main", nil)
	f("a/refs/heads/refs/tags", "a", "refs/heads/refs/tags", nil)
	f("a/refs/x", "a", "refs/x", nil)
	f("refsx/refs", "refsx", "", nil)

	f("", "", "", ErrRouteNotFound)
	f("org/proj.git", "", "", ErrRouteNotFound)
	f("org/proj.git/ref", "", "", ErrRouteNotFound)
	f("org/myrefs/x", "", "", ErrRouteNotFound)
	f("refs", "", "", ErrInvalidRepo)
	f("refs/heads/main", "", "", ErrInvalidRepo)
	f("/refs", "", "", ErrInvalidRepo)
	f("/org/x/refs", "", "", ErrInvalidRepo)
	f("org//refs", "", "", ErrInvalidRepo)
	f("org/../refs/heads/main", "", "", ErrInvalidRepo)
	f("org/x/refs//", "", "", ErrInvalidRefName)
	f("org/x/refs/heads/", "", "", ErrInvalidRefName)
	f("org/x/refs/heads/a..b", "", "", ErrInvalidRefName)
	f("org/x/refs/heads/x.lock", "", "", ErrInvalidRefName)
}

func TestValidateRefTxn(t *testing.T) {
	sha1, sha256 := strings.Repeat("ab", 20), strings.Repeat("cd", 32)
	zero1, zero256 := ZeroOID, strings.Repeat("0", 64)
	up := func(name, from, to string) RefUpdate { return RefUpdate{Name: name, Old: from, New: to} }
	f := func(wantErr error, ups ...RefUpdate) {
		t.Helper()
		err := ValidateRefTxn(RefTxn{Updates: ups})
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("ValidateRefTxn(%v) = %v; want %v", ups, err, wantErr)
		}
	}
	f(nil, up("refs/heads/main", zero1, sha1))
	f(nil, up("refs/heads/main", sha1, zero1))
	f(nil, up("refs/heads/main", sha256, strings.Repeat("ef", 32)))
	f(nil, up("refs/heads/main", zero256, sha1)) // zero of either length is "none"
	f(nil, up("refs/heads/main", sha256, zero1))
	f(nil, up("refs/heads/a", zero1, sha1), up("refs/heads/b", sha1, zero1))

	f(ErrBadRequest)
	f(ErrBadRequest, up("refs/heads/a", zero1, sha1), up("refs/heads/a", sha1, zero1))
	f(ErrInvalidRefName, up("refs/heads/a", zero1, sha1), up("heads/b", zero1, sha1))
	f(ErrInvalidRefName, up("refs/heads/a..b", zero1, sha1))
	f(ErrInvalidOID, up("refs/heads/a", "", sha1))
	f(ErrInvalidOID, up("refs/heads/a", zero1, ""))
	f(ErrInvalidOID, up("refs/heads/a", zero1, strings.ToUpper(sha1)))
	f(ErrInvalidOID, up("refs/heads/a", zero1[:39], sha1))
	f(ErrInvalidOID, up("refs/heads/a", sha1, sha256))

	many := make([]RefUpdate, MaxRefUpdates+1)
	for i := range many {
		many[i] = up("refs/heads/b"+strings.Repeat("x", i), zero1, sha1)
	}
	f(nil, many[:MaxRefUpdates]...)
	f(ErrBadRequest, many...)
}

func TestValidateRefTxnNamesTheUpdate(t *testing.T) {
	err := ValidateRefTxn(RefTxn{Updates: []RefUpdate{
		{Name: "refs/heads/a", Old: ZeroOID, New: ZeroOID},
		{Name: "refs/heads/b", Old: ZeroOID, New: "nope"},
	}})
	if err == nil || !strings.Contains(err.Error(), "update 1") || !strings.Contains(err.Error(), "new") {
		t.Fatalf("ValidateRefTxn error = %v; want it to name update 1 and field new", err)
	}
}

// TestPartitionOfGolden pins placement: PartitionOf is part of the on-disk
// contract, and a change here would strand every stored ref.
func TestPartitionOfGolden(t *testing.T) {
	f := func(repo string, want int) {
		t.Helper()
		if got := PartitionOf(repo, DefaultPartitionCount); got != want {
			t.Fatalf("PartitionOf(%q, %d) = %d; want %d", repo, DefaultPartitionCount, got, want)
		}
	}
	f("a", 202)
	f("org/proj.git", 248)
	f("linux", 128)
	f("torvalds/linux.git", 112)
	f("x/y/z", 81)
}

func TestPartitionOfRange(t *testing.T) {
	f := func(count int) {
		t.Helper()
		for _, c := range repoCases {
			if p := PartitionOf(c.name, count); p < 0 || p >= count {
				t.Fatalf("PartitionOf(%.80q, %d) = %d; want 0 <= p < %d", c.name, count, p, count)
			}
		}
	}
	for _, count := range []int{1, 2, 3, 7, 64, DefaultPartitionCount, 1000, 1 << 20, 1<<31 - 1} {
		f(count)
	}
}
