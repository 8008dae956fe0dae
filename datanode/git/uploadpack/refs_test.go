package uploadpack

import "testing"

// TestChooseHead: HEAD is main, else master, else the first branch by
// name, else nothing (tags are not branches).
func TestChooseHead(t *testing.T) {
	f := func(names []string, want string) {
		t.Helper()
		var refs []ref
		for _, n := range names {
			refs = append(refs, ref{name: n})
		}
		if got := chooseHead(refs); got != want {
			t.Fatalf("chooseHead(%q): got %q; want %q", names, got, want)
		}
	}
	f([]string{"refs/heads/a", "refs/heads/main", "refs/heads/master"}, "refs/heads/main")
	f([]string{"refs/heads/a", "refs/heads/master", "refs/heads/z"}, "refs/heads/master")
	f([]string{"refs/heads/b", "refs/heads/c", "refs/tags/a"}, "refs/heads/b")
	f([]string{"refs/notes/x", "refs/tags/v1"}, "")
	f(nil, "")
}
