package pack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// TestReadsStockGitPacks: packs from git pack-objects, with OFS and REF
// deltas, parse to exactly the objects git lists.
func TestReadsStockGitPacks(t *testing.T) {
	r := gittest.New(t, true)
	fastImport(t, r, 400)
	want := lines(r.Git(nil, "cat-file", "--batch-all-objects", "--batch-check"))
	if len(want) < 2000 {
		t.Fatalf("generated repository has %d objects; want at least 2000", len(want))
	}
	revs := r.Git(nil, "rev-list", "--objects", "--all")
	for _, c := range []struct {
		name, flag string
		cache      int64
		ref        bool // git writes REF_DELTA without --delta-base-offset
	}{{"ofs-delta", "--delta-base-offset", 0, false}, {"ref-delta", "--no-reuse-delta", 0, true}, {"no cache: bases re-read from the spool", "--delta-base-offset", 1, false}} {
		t.Run(c.name, func(t *testing.T) {
			p := r.Git(revs, "pack-objects", "--stdout", c.flag)
			got, res, err := readAll(t, p, Config{TempDir: t.TempDir(), CacheBytes: c.cache})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if d := diff(got, want); d != "" {
				t.Fatalf("objects differ from git cat-file --batch-all-objects: %s", d)
			}
			if res.Deltas < 100 || res.Objects != len(want) {
				t.Fatalf("got %d objects, %d deltas; want %d objects and at least 100 deltas", res.Objects, res.Deltas, len(want))
			}
			if c.ref != (res.RefDeltas == res.Deltas) || (!c.ref && res.RefDeltas != 0) {
				t.Fatalf("got %d REF deltas of %d; want all REF: %v", res.RefDeltas, res.Deltas, c.ref)
			}
			t.Logf("%d objects, %d deltas (%d REF), %d bytes", res.Objects, res.Deltas, res.RefDeltas, len(p))
		})
	}
}

// TestThinPack: a thin pack needs its outside bases from the BaseSource.
func TestThinPack(t *testing.T) {
	r := gittest.New(t, true)
	fastImport(t, r, 200)
	want := lines(r.Git(r.Git(nil, "rev-list", "--objects", "--no-object-names", "main", "^base"), "cat-file", "--batch-check"))
	p := r.Git([]byte("main\n^base\n"), "pack-objects", "--stdout", "--thin", "--revs", "--delta-base-offset")
	_, _, err := readAll(t, p, Config{})
	if !errors.Is(err, ErrMissingBase) {
		t.Fatalf("thin pack without a base source: got %v; want ErrMissingBase", err)
	}
	got, res, err := readAll(t, p, Config{Base: gitBase(r)})
	if err != nil {
		t.Fatalf("thin pack with a base source: %v", err)
	}
	if d := diff(got, want); d != "" {
		t.Fatalf("objects differ from git rev-list --objects main ^base: %s", d)
	}
	if res.ExternalBases == 0 {
		t.Fatalf("got 0 external bases; want a thin pack that uses some")
	}
	t.Logf("%d objects, %d deltas, %d external bases", res.Objects, res.Deltas, res.ExternalBases)
}

// TestWriterAcceptedByGit: a pack written by Writer, whole objects and
// OFS deltas, passes git index-pack --strict and git verify-pack.
func TestWriterAcceptedByGit(t *testing.T) {
	src := gittest.New(t, true)
	fastImport(t, src, 150)
	stock := src.Git(src.Git(nil, "rev-list", "--objects", "--all"), "pack-objects", "--stdout")
	type obj struct {
		t    object.Type
		body []byte
	}
	var objs []obj
	if _, err := Read(context.Background(), bytes.NewReader(stock), Config{}, func(o Object) error {
		objs = append(objs, obj{o.Type, bytes.Clone(o.Body)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, uint32(len(objs)))
	if err != nil {
		t.Fatal(err)
	}
	var lastBlob []byte
	var lastOff int64
	deltas := 0
	for _, o := range objs {
		if o.t == object.Blob && lastBlob != nil {
			if _, err := w.AddOfsDelta(lastOff, lastBlob, o.body); err != nil {
				t.Fatal(err)
			}
			deltas++
			continue
		}
		off, err := w.Add(o.t, o.body)
		if err != nil {
			t.Fatal(err)
		}
		if o.t == object.Blob {
			lastBlob, lastOff = o.body, off
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dst := gittest.New(t, true)
	out := dst.Line(buf.Bytes(), "index-pack", "--strict", "--stdin")
	idx := filepath.Join(dst.Dir, "objects", "pack", "pack-"+strings.TrimPrefix(out, "pack\t")+".idx")
	v := string(dst.Git(nil, "verify-pack", "-v", idx))
	if !strings.Contains(v, "chain length = 1:") {
		t.Fatalf("git verify-pack -v shows no deltas; want %d:\n%s", deltas, v[max(0, len(v)-500):])
	}
	got := lines(dst.Git(nil, "cat-file", "--batch-all-objects", "--batch-check"))
	want := lines(src.Git(nil, "cat-file", "--batch-all-objects", "--batch-check"))
	if d := diff(got, want); d != "" {
		t.Fatalf("git read back other objects from our pack: %s", d)
	}
	back, _, err := readAll(t, buf.Bytes(), Config{})
	if err != nil || diff(back, want) != "" {
		t.Fatalf("Read of our own pack: %v %s", err, diff(back, want))
	}
}

// TestCollisionPairInPack: the SHA-mbles files collide as raw data, but as
// blobs ("blob 640\0" prefixed) they do not: the pack reads to two distinct
// IDs that match git's, and neither can stand in for the other.
func TestCollisionPairInPack(t *testing.T) {
	r := gittest.New(t, true)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, 2)
	var want []string
	for _, name := range []string{"sha-mbles-1.bin", "sha-mbles-2.bin"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "sha1-collision", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := object.HashRaw(data); !errors.Is(err, ErrCollision) {
			t.Fatalf("%s: raw hash got %v; want ErrCollision", name, err)
		}
		w.Add(object.Blob, data)
		want = append(want, r.Line(data, "hash-object", "--stdin")+" blob 640")
	}
	w.Close()
	got, _, err := readAll(t, buf.Bytes(), Config{})
	if err != nil || diff(got, lines([]byte(strings.Join(want, "\n")))) != "" {
		t.Fatalf("got %v %v; want %v", got, err, want)
	}
}

// TestCallerSpoolHoldsThePack: with Config.Spool, Read copies the pack into
// the caller's file (everything but the trailer, which Result.Checksum
// holds), uses it to re-read delta bases (no cache, so every base is
// re-read), and leaves it for the caller.
func TestCallerSpoolHoldsThePack(t *testing.T) {
	r := gittest.New(t, true)
	fastImport(t, r, 100)
	p := r.Git(r.Git(nil, "rev-list", "--objects", "--all"), "pack-objects", "--stdout", "--delta-base-offset")
	f, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, res, err := readAll(t, p, Config{Spool: f, CacheBytes: 1})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if res.Deltas == 0 {
		t.Fatal("the pack has no deltas: the spool was never re-read")
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatalf("the spool after Read: %v", err)
	}
	if got = append(got, res.Checksum[:]...); !bytes.Equal(got, p) {
		t.Fatalf("spool and trailer: %d bytes; want the pack's %d, byte for byte", len(got), len(p))
	}
}
