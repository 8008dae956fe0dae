package pack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/object"
)

var (
	baseBody   = bytes.Repeat([]byte("base line\n"), 50)
	targetBody = append(bytes.Repeat([]byte("base line\n"), 49), "changed\n"...)
)

// smallPack is a pack of a blob, an OFS delta on it and a tree.
func smallPack(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := NewWriter(&b, 3)
	off, _ := w.Add(object.Blob, baseBody)
	w.AddOfsDelta(off, baseBody, targetBody)
	w.Add(object.Tree, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawPack writes entries given as raw (kind, extra, data) with a valid
// checksum, for deltas the Writer would never produce.
func rawPack(t testing.TB, entries ...func(w *Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := NewWriter(&b, uint32(len(entries)))
	for _, e := range entries {
		if err := e(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func blobEntry(body []byte) func(w *Writer) error {
	return func(w *Writer) error { _, err := w.Add(object.Blob, body); return err }
}

// ofsEntry is an OFS_DELTA with raw delta data against the entry at 12.
func ofsEntry(delta []byte) func(w *Writer) error {
	return func(w *Writer) error { _, err := w.entry(typeOfsDelta, appendOfs(nil, w.off-12), delta); return err }
}

func refEntry(base object.ID, delta []byte) func(w *Writer) error {
	return func(w *Writer) error { _, err := w.entry(typeRefDelta, base[:], delta); return err }
}

func delta(baseSize, resultSize int, ops ...byte) []byte {
	d := appendDeltaVarint(appendDeltaVarint(nil, uint64(baseSize)), uint64(resultSize))
	return append(d, ops...)
}

func TestSmallPackAcceptedByGit(t *testing.T) {
	p := smallPack(t)
	r := gittest.New(t, true)
	r.Git(p, "index-pack", "--stdin")
	got, _, err := readAll(t, p, Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := lines(r.Git(nil, "cat-file", "--batch-all-objects", "--batch-check"))
	if d := diff(got, want); d != "" {
		t.Fatalf("got %v; want %v (%s)", got, want, d)
	}
}

func TestCorruptPacks(t *testing.T) {
	good := smallPack(t)
	f := func(name string, p []byte, cfg Config, want ...error) {
		t.Helper()
		_, _, err := readAll(t, p, cfg)
		for _, w := range want {
			if errors.Is(err, w) {
				return
			}
		}
		t.Errorf("%s: got %v; want one of %v", name, err, want)
	}
	for _, n := range []int{0, 3, 11, 12, 13, 20, len(good) / 2, len(good) - 21, len(good) - 20, len(good) - 1} {
		f(fmt.Sprintf("truncated to %d of %d", n, len(good)), good[:n], Config{}, ErrTruncated)
	}
	flip := func(i int) []byte {
		p := bytes.Clone(good)
		p[i] ^= 0x40
		return p
	}
	f("bad signature", flip(0), Config{}, ErrCorrupt)
	f("bad version", flip(7), Config{}, ErrCorrupt)
	f("flipped trailer", flip(len(good)-1), Config{}, ErrBadChecksum)
	for i := 12; i < len(good)-20; i += 7 {
		f(fmt.Sprintf("flipped byte %d", i), flip(i), Config{}, ErrCorrupt, ErrBadChecksum, ErrBadDelta, ErrTruncated, ErrTooLarge)
	}
	f("data after trailer", append(bytes.Clone(good), 0), Config{}, ErrCorrupt)
	f("object over MaxObjectSize", good, Config{MaxObjectSize: 100}, ErrTooLarge)

	base := blobEntry(baseBody)
	n := len(baseBody)
	f("copy outside the base", rawPack(t, base, ofsEntry(delta(n, 10, 0x93, byte(n-5), byte((n-5)>>8), 10))), Config{}, ErrBadDelta)
	f("wrong base size", rawPack(t, base, ofsEntry(delta(n+1, 1, 1, 'x'))), Config{}, ErrBadDelta)
	f("result shorter than declared", rawPack(t, base, ofsEntry(delta(n, 5, 1, 'x'))), Config{}, ErrBadDelta)
	f("result longer than declared", rawPack(t, base, ofsEntry(delta(n, 1, 2, 'x', 'y'))), Config{}, ErrBadDelta)
	f("reserved instruction", rawPack(t, base, ofsEntry(delta(n, 1, 0))), Config{}, ErrBadDelta)
	f("insert cut short", rawPack(t, base, ofsEntry(delta(n, 3, 3, 'x'))), Config{}, ErrBadDelta)
	f("result over MaxObjectSize", rawPack(t, base, ofsEntry(delta(n, 2000, 1, 'x'))), Config{MaxObjectSize: 1000}, ErrTooLarge)
	f("ofs base not an entry", rawPack(t, base, func(w *Writer) error {
		_, err := w.entry(typeOfsDelta, appendOfs(nil, w.off-13), delta(n, 1, 1, 'x'))
		return err
	}), Config{}, ErrBadDelta)
	var missing object.ID
	missing[0] = 1
	f("ref base missing", rawPack(t, refEntry(missing, delta(1, 1, 1, 'x'))), Config{}, ErrMissingBase)
	// Two REF deltas whose bases are each other: never resolved, no loop.
	a, b := []byte("aaaa"), []byte("bb")
	ida, _ := object.Hash(object.Blob, a)
	idb, _ := object.Hash(object.Blob, b)
	cycle := rawPack(t,
		refEntry(idb, delta(len(b), len(a), 4, 'a', 'a', 'a', 'a')),
		refEntry(ida, delta(len(a), len(b), 2, 'b', 'b')))
	f("delta cycle", cycle, Config{}, ErrMissingBase, ErrBadDelta)
	f("chain over MaxChainDepth", rawPack(t, base, ofsEntry(delta(n, 1, 1, 'x')), func(w *Writer) error {
		_, err := w.entry(typeOfsDelta, appendOfs(nil, w.off-w.lastOff()), delta(1, 1, 1, 'y'))
		return err
	}), Config{MaxChainDepth: 1}, ErrBadDelta)
	f("bad entry type 5", rawPack(t, func(w *Writer) error { _, err := w.entry(5, nil, nil); return err }), Config{}, ErrCorrupt)
}

// TestReadHonoursContext: a cancelled context stops the read.
func TestReadHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Read(ctx, bytes.NewReader(smallPack(t)), Config{}, func(Object) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
}

// TestCallbackErrorStopsRead: the caller's error comes back unchanged.
func TestCallbackErrorStopsRead(t *testing.T) {
	stop := errors.New("stop")
	_, err := Read(context.Background(), bytes.NewReader(smallPack(t)), Config{}, func(Object) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("got %v; want the callback's error", err)
	}
}

func TestApplyDeltaRoundTrip(t *testing.T) {
	for _, c := range [][2]string{{"", ""}, {"abc", ""}, {"", "xyz"}, {"hello world", "hello there world"}, {string(bytes.Repeat([]byte("z"), 200000)), string(bytes.Repeat([]byte("z"), 150000)) + "tail"}} {
		d := AppendDelta(nil, []byte(c[0]), []byte(c[1]))
		got, err := ApplyDelta(nil, []byte(c[0]), d, 1<<30)
		if err != nil || string(got) != c[1] {
			t.Fatalf("delta %q -> %q: got %q, %v", c[0][:min(len(c[0]), 20)], c[1][:min(len(c[1]), 20)], got[:min(len(got), 20)], err)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(smallPack(f))
	f.Add(rawPack(f, blobEntry(baseBody), ofsEntry(delta(len(baseBody), 3, 0x91, 2, 3))))
	f.Fuzz(func(t *testing.T, p []byte) {
		cfg := Config{MaxObjectSize: 1 << 20, MaxObjects: 1000, TempDir: t.TempDir()}
		_, err := Read(context.Background(), bytes.NewReader(p), cfg, func(o Object) error {
			if id, err := object.Hash(o.Type, o.Body); err != nil || id != o.ID {
				t.Fatalf("object at %d: ID %s does not match its body (%v)", o.Offset, o.ID, err)
			}
			return nil
		})
		if err == nil {
			return
		}
		for _, w := range []error{ErrCorrupt, ErrTruncated, ErrBadChecksum, ErrBadDelta, ErrMissingBase, ErrTooLarge, ErrCollision} {
			if errors.Is(err, w) {
				return
			}
		}
		t.Fatalf("untyped error: %v", err)
	})
}
