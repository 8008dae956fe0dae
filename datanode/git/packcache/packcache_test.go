package packcache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// fakePack is bytes shaped like a pack: a 12-byte header, a body, and the
// SHA-1 of both as its trailer.
func fakePack(body string) []byte {
	p := append([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x01"), body...)
	sum := sha1.Sum(p)
	return append(p, sum[:]...)
}

func key(c byte) string { return strings.Repeat(string(c), 64) }

func mustOpen(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fill runs one Lookup that must miss and commits p under k.
func fill(t *testing.T, c *Cache, k string, p []byte) {
	t.Helper()
	r, w, err := c.Lookup(context.Background(), k)
	if err != nil || r != nil || w == nil {
		t.Fatalf("Lookup(%s) on an empty key: reader %v, writer %v, err %v; want a writer", k[:4], r, w, err)
	}
	w.Write(p)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// read runs one Lookup that must hit and returns the pack's bytes.
func read(t *testing.T, c *Cache, k string) []byte {
	t.Helper()
	r, w, err := c.Lookup(context.Background(), k)
	if err != nil || r == nil || w != nil {
		t.Fatalf("Lookup(%s) of a cached key: reader %v, writer %v, err %v; want a reader", k[:4], r, w, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil || int64(len(b)) != r.Size {
		t.Fatalf("read %d bytes (err %v); Size says %d", len(b), err, r.Size)
	}
	return b
}

// A filled key is served back byte for byte, also after a reopen; an
// aborted one is not, and the next caller fills it.
func TestFillServeAndAbort(t *testing.T) {
	dir := t.TempDir()
	c := mustOpen(t, dir, 1<<20)
	p := fakePack("objects")
	fill(t, c, key('a'), p)
	if got := read(t, c, key('a')); !bytes.Equal(got, p) {
		t.Fatalf("cached pack %q; want %q", got, p)
	}
	_, w, _ := c.Lookup(context.Background(), key('b'))
	w.Write(fakePack("half"))
	w.Abort()
	fill(t, c, key('b'), fakePack("again")) // fill asserts a miss
	c = mustOpen(t, dir, 1<<20)
	if got := read(t, c, key('a')); !bytes.Equal(got, p) {
		t.Fatalf("after reopen: %q; want %q", got, p)
	}
	if hits, misses, _ := c.Stats(); hits != 1 || misses != 0 {
		t.Fatalf("stats after reopen: %d hits, %d misses; want 1, 0", hits, misses)
	}
}

// A second caller of a key being filled waits for the fill and is served
// the pack; one whose context ends first gives up with its error, and one
// that waited MaxWait gets neither a pack nor a writer.
func TestConcurrentLookupsWaitForTheFill(t *testing.T) {
	c := mustOpen(t, t.TempDir(), 1<<20)
	_, w, _ := c.Lookup(context.Background(), key('c'))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.Lookup(ctx, key('c')); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup while filling, deadline passed: %v; want %v", err, context.DeadlineExceeded)
	}
	c.MaxWait = 10 * time.Millisecond
	if r, w, err := c.Lookup(context.Background(), key('c')); r != nil || w != nil || err != nil {
		t.Fatalf("Lookup past MaxWait: reader %v, writer %v, err %v; want none of them", r, w, err)
	}
	c.MaxWait = time.Minute
	got := make(chan []byte)
	go func() { got <- read(t, c, key('c')) }()
	p := fakePack("shared")
	w.Write(p)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, p) {
		t.Fatalf("the waiting caller got %q; want %q", b, p)
	}
}

// A cached pack whose bytes no longer match its trailer is removed, never
// served: the caller gets a writer to fill it anew.
func TestDamagedPackIsRefilled(t *testing.T) {
	dir := t.TempDir()
	c := mustOpen(t, dir, 1<<20)
	fill(t, c, key('d'), fakePack("intact"))
	f, err := os.OpenFile(c.path(key('d')), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 14)
	f.Close()
	fill(t, c, key('d'), fakePack("refilled"))
	if got := read(t, c, key('d')); !bytes.Equal(got, fakePack("refilled")) {
		t.Fatalf("after refill: %q", got)
	}
}

// The cache stays within its bound, evicting the least recently used
// pack; a pack larger than the bound is not kept.
func TestBoundEvictsLeastRecentlyUsed(t *testing.T) {
	p := fakePack(strings.Repeat("x", 100)) // 132 bytes
	c := mustOpen(t, t.TempDir(), 3*int64(len(p)))
	fill(t, c, key('1'), p)
	fill(t, c, key('2'), p)
	fill(t, c, key('3'), p)
	time.Sleep(10 * time.Millisecond) // distinct use times
	read(t, c, key('1'))              // 2 is now the least recently used
	fill(t, c, key('4'), p)
	if _, _, n := c.Stats(); n != 3*int64(len(p)) {
		t.Fatalf("cache holds %d bytes; want %d", n, 3*len(p))
	}
	for k, want := range map[byte]bool{'1': true, '2': false, '3': true, '4': true} {
		r, w, _ := c.Lookup(context.Background(), key(k))
		if (r != nil) != want {
			t.Errorf("key %c cached: %t; want %t", k, r != nil, want)
		}
		if r != nil {
			r.Close()
		}
		if w != nil {
			w.Abort()
		}
	}
	_, w, _ := c.Lookup(context.Background(), key('5'))
	w.Write(fakePack(strings.Repeat("y", 1000)))
	if err := w.Commit(); err == nil {
		t.Fatal("a pack over the bound was committed")
	}
	if r, w, _ := c.Lookup(context.Background(), key('5')); r != nil || w == nil {
		t.Fatal("a pack over the bound was kept")
	}
}
