package uploadpack

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/pack"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// v2Fetch sends a v2 fetch with args to Serve and returns the packet
// lines before the packfile section, the IDs in the pack and the progress
// text of band 2.
func v2Fetch(t *testing.T, b backend.Backend, repo string, args ...string) (head []string, ids []string, progress string) {
	head, ids, progress, _ = v2FetchPack(t, b, repo, args...)
	return head, ids, progress
}

// v2FetchPack is v2Fetch that also returns what pack.Read found.
func v2FetchPack(t *testing.T, b backend.Backend, repo string, args ...string) (head []string, ids []string, progress string, res pack.Result) {
	t.Helper()
	var out bytes.Buffer
	req := pkts(append(append([]string{"command=fetch", "agent=test", "\x01"}, args...), "")...)
	if err := Serve(context.Background(), strings.NewReader(req), &out, b, repo, true); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	pr := pktline.NewReader(&out)
	for {
		k, p, err := pr.ReadPacket()
		if err != nil {
			t.Fatalf("response: %v after %q", err, head)
		}
		line := strings.TrimSuffix(string(p), "\n")
		if k == pktline.Delim {
			line = "(delim)"
		}
		if k == pktline.Flush {
			return head, nil, "", res
		}
		head = append(head, line)
		if line == "packfile" {
			break
		}
	}
	var prog bytes.Buffer
	sb := pktline.NewSidebandReader(pr, &prog)
	res, err := pack.Read(context.Background(), sb, pack.Config{}, func(o pack.Object) error {
		ids = append(ids, o.ID.String())
		return nil
	})
	if err != nil {
		t.Fatalf("reading the pack: %v", err)
	}
	slices.Sort(ids)
	return head, ids, prog.String(), res
}

// TestIncludeTag: with include-tag the pack carries the annotated tags
// (and a tag of a tag) whose target it carries; without it, not. Progress
// comes on band 2 unless no-progress.
func TestIncludeTag(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 4, 2) // v2 on main~2, v4 on main
	src.Git(nil, "tag", "-a", "-m", "nested", "v4-nested", "v4")
	m := backend.NewMemory()
	load(t, m, "r", src)
	tip := src.Line(nil, "rev-parse", "main")
	tags := []string{src.Line(nil, "rev-parse", "v2"), src.Line(nil, "rev-parse", "v4"), src.Line(nil, "rev-parse", "v4-nested")}
	all := sortedLines(string(src.Git(nil, "rev-list", "--objects", "--no-object-names", "main")))

	_, without, progress := v2Fetch(t, m, "r", "want "+tip, "done")
	if !slices.Equal(without, all) {
		t.Fatalf("pack without include-tag: got %d objects; want the %d of rev-list --objects main", len(without), len(all))
	}
	if !strings.Contains(progress, "Counting objects: ") {
		t.Fatalf("progress: got %q; want Counting objects", progress)
	}
	_, with, progress := v2Fetch(t, m, "r", "want "+tip, "include-tag", "no-progress", "done")
	want := slices.Sorted(slices.Values(append(slices.Clone(all), tags...)))
	if !slices.Equal(with, want) {
		t.Fatalf("pack with include-tag: got %d objects; want %d (the three tags too)", len(with), len(want))
	}
	if progress != "" {
		t.Fatalf("progress with no-progress: got %q; want none", progress)
	}
}

// TestV2Acknowledgments: haves the store holds are ACKed; once the wants
// reach them, "ready" and the pack follow in the same response; haves it
// does not hold alone get a NAK and no pack.
func TestV2Acknowledgments(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 6, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	tip, old := src.Line(nil, "rev-parse", "main"), src.Line(nil, "rev-parse", "main~2")
	unknown := strings.Repeat("cd", 20)

	head, ids, _ := v2Fetch(t, m, "r", "want "+tip, "have "+unknown, "have "+old)
	wantHead := []string{"acknowledgments", "ACK " + old, "ready", "(delim)", "packfile"}
	if !slices.Equal(head, wantHead) {
		t.Fatalf("response: got %q; want %q", head, wantHead)
	}
	if want := sortedLines(string(src.Git(nil, "rev-list", "--objects", "--no-object-names", "main", "^"+old))); !slices.Equal(ids, want) {
		t.Fatalf("pack: got %d objects; want the %d new ones", len(ids), len(want))
	}
	head, _, _ = v2Fetch(t, m, "r", "want "+tip, "have "+unknown)
	if want := []string{"acknowledgments", "NAK"}; !slices.Equal(head, want) {
		t.Fatalf("response to unknown haves: got %q; want %q and a flush", head, want)
	}
	head, _, _ = v2Fetch(t, m, "r", "want "+tip, "have "+old, "wait-for-done")
	if want := []string{"acknowledgments", "ACK " + old}; !slices.Equal(head, want) {
		t.Fatalf("response with wait-for-done: got %q; want %q and a flush", head, want)
	}
}

// TestBoundaryTrees: the client has main's tip and wants a branch forked
// from main~3. The fork point is not one of its haves, only an ancestor of
// one; its trees must still count as the client's, or the pack would
// carry every file of main~3 the branch did not change.
func TestBoundaryTrees(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 8, 0)
	generate(t, src, "side", "refs/heads/main~3", 100, 1, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	main, side := src.Line(nil, "rev-parse", "main"), src.Line(nil, "rev-parse", "side")
	_, ids, _ := v2Fetch(t, m, "r", "want "+side, "have "+main, "done")
	want := sortedLines(string(src.Git(nil, "rev-list", "--objects", "--no-object-names", "side", "^"+main)))
	if !slices.Equal(ids, want) {
		t.Fatalf("pack: got %d objects; want the %d of rev-list --objects side ^main", len(ids), len(want))
	}
}

// TestDeltas: with ofs-delta, the versions of a file are sent as deltas of
// each other (the same objects, fewer bytes); without it, whole objects.
func TestDeltas(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 60, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	tip := src.Line(nil, "rev-parse", "main")
	want := sortedLines(string(src.Git(nil, "rev-list", "--objects", "--no-object-names", "main")))
	_, whole, _, res := v2FetchPack(t, m, "r", "want "+tip, "done")
	if !slices.Equal(whole, want) || res.Deltas != 0 {
		t.Fatalf("without ofs-delta: got %d objects, %d deltas; want %d, none", len(whole), res.Deltas, len(want))
	}
	_, ids, progress, res := v2FetchPack(t, m, "r", "want "+tip, "ofs-delta", "done")
	if !slices.Equal(ids, want) || res.Deltas < len(want)/3 || res.RefDeltas != 0 {
		t.Fatalf("with ofs-delta: got %d objects, %d deltas (%d REF); want %d, a third or more OFS deltas", len(ids), res.Deltas, res.RefDeltas, len(want))
	}
	t.Logf("%d objects, %d deltas; %q", len(ids), res.Deltas, progress)
}

// TestShallowStaysInRepository: a client that names another repository's
// commit as its shallow boundary and asks to deepen (absolutely, relatively
// or to the whole history) gets no "unshallow" for it and none of that
// repository's objects.
func TestShallowStaysInRepository(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 3, 0)
	other := gittest.New(t, true)
	generate(t, other, "secret", "", 500, 3, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	load(t, m, "other", other)
	tip, secret := src.Line(nil, "rev-parse", "main"), other.Line(nil, "rev-parse", "secret")
	leaked := sortedLines(string(other.Git(nil, "rev-list", "--objects", "--no-object-names", "secret~1")))
	for _, deepen := range [][]string{{"deepen 2147483647"}, {"deepen 5", "deepen-relative"}, {"deepen 5"}} {
		args := append([]string{"want " + tip, "shallow " + secret}, deepen...)
		head, ids, _ := v2Fetch(t, m, "r", append(args, "done")...)
		if slices.Contains(head, "unshallow "+secret) {
			t.Fatalf("%q: the other repository's commit was unshallowed: %q", deepen, head)
		}
		for _, id := range ids {
			if slices.Contains(leaked, id) {
				t.Fatalf("%q: the pack holds %s of the other repository", deepen, id)
			}
		}
	}
}
