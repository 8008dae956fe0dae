package receivepack

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// TestPushWithOneStaleRef moves one of two pushed refs on the server
// between git's advertisement and its POST. With or without --atomic the
// whole push is refused: no ref changes, git prints the stale ref's
// "fetch first" and the other's "atomic push failure".
func TestPushWithOneStaleRef(t *testing.T) {
	for _, atomic := range []bool{true, false} {
		t.Run(map[bool]string{true: "atomic", false: "plain"}[atomic], func(t *testing.T) {
			s := newServer(t)
			r := gittest.New(t, false)
			history(t, r, "", 20, 4)
			if out, ok := gitPush(t, r, s.url(), "main", "base"); !ok {
				t.Fatalf("setup push failed:\n%s", out)
			}
			oldMain := r.Line(nil, "rev-parse", "main")
			history(t, r, oldMain, 3, 5)
			r.Git(nil, "branch", "-f", "base", "main")
			// Another pusher moves base back one commit after the
			// advertisement: the push's old value for base is stale.
			baseNow := r.Line(nil, "rev-parse", "base@{1}")
			moved := r.Line(nil, "rev-parse", baseNow+"~1")
			s.setHook(func() {
				u := backend.Update{Name: "refs/heads/base", Old: baseNow, New: moved}
				if err := s.mem.Update(context.Background(), testRepo, []backend.Update{u}); err != nil {
					t.Errorf("moving base: %v", err)
				}
			})
			before := strings.Replace(s.refs(), baseNow+" refs/heads/base", moved+" refs/heads/base", 1)
			args := []string{s.url(), "main", "base"}
			if atomic {
				args = append([]string{"--atomic"}, args...)
			}
			out, ok := gitPush(t, r, args...)
			if ok {
				t.Fatalf("push with a stale ref succeeded:\n%s", out)
			}
			// git turns the remote's "fetch first" into its own [rejected].
			if !strings.Contains(out, "refs/heads/base\t[rejected] (fetch first)") ||
				!strings.Contains(out, "refs/heads/main\t[remote rejected] (atomic push failure)") {
				t.Fatalf("git printed:\n%s\nwant base rejected (fetch first), main (atomic push failure)", out)
			}
			if got := s.refs(); got != before {
				t.Fatalf("refs after the refused push:\n%s\nwant unchanged:\n%s", got, before)
			}
		})
	}
}

// TestConcurrentPushesToOneBranch pushes two different commits to main from
// two clones at once; the server holds both POSTs until both have arrived,
// so both carry the same old value. Exactly one wins, the other is told to
// fetch first, and main is the winner's commit.
func TestConcurrentPushesToOneBranch(t *testing.T) {
	s := newServer(t)
	src := gittest.New(t, false)
	history(t, src, "", 10, 6)
	if out, ok := gitPush(t, src, s.url(), "main"); !ok {
		t.Fatalf("setup push failed:\n%s", out)
	}
	var clones [2]*gittest.Repo
	var heads [2]string
	for i := range clones {
		clones[i] = gittest.New(t, false)
		clones[i].Git(nil, "fetch", "-q", "--update-head-ok", src.Dir, "main:main")
		history(t, clones[i], clones[i].Line(nil, "rev-parse", "main"), 2, uint64(10+i))
		heads[i] = clones[i].Line(nil, "rev-parse", "main")
	}
	var arrived sync.WaitGroup
	arrived.Add(2)
	bothHere := make(chan struct{})
	go func() { arrived.Wait(); close(bothHere) }()
	s.setHook(func() {
		arrived.Done()
		select {
		case <-bothHere:
		case <-time.After(20 * time.Second):
			t.Error("the second push never reached the server")
		}
	})
	var outs [2]string
	var oks [2]bool
	var wg sync.WaitGroup
	for i := range clones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], oks[i] = gitPush(t, clones[i], s.url(), "main")
		}()
	}
	wg.Wait()
	if oks[0] == oks[1] {
		t.Fatalf("pushes succeeded: %v; want exactly one\n%s\n%s", oks, outs[0], outs[1])
	}
	win, lose := 0, 1
	if oks[1] {
		win, lose = 1, 0
	}
	if !strings.Contains(outs[lose], "refs/heads/main\t[rejected] (fetch first)") {
		t.Fatalf("the losing push printed:\n%s\nwant (fetch first)", outs[lose])
	}
	if got, want := s.refs(), heads[win]+" refs/heads/main\n"; got != want {
		t.Fatalf("refs: %s; want the winner's %s", got, want)
	}
}
