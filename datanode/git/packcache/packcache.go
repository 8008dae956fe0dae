// Package packcache keeps, on a data node's disk, the packs it wrote for
// full clones, so that the next clone of the same tips is a file copy
// instead of a walk, a read of every object and a delta search.
//
// A pack is cached under a key that names everything its bytes depend on
// (package uploadpack builds it: the repository, the wanted tips, the
// capabilities that change the pack, and the refs when tags are
// included). Objects are immutable and the key holds their IDs, so an
// entry never goes stale: a push makes new tips and so a new key, and the
// old entries age out. The cache is bounded in bytes and evicts the least
// recently used entries; it is this node's alone (not replicated, not
// durable): losing it costs one slow clone.
//
//	r, w, err := c.Lookup(ctx, key)
//	switch {
//	case err != nil: // ctx ended while another request filled key
//	case r != nil:   // a cached pack: copy r to the client, then r.Close()
//	case w != nil:   // this request fills it: tee the pack into w, then
//		w.Commit() // or w.Abort() if the pack failed
//	default: // another fill took over MaxWait: write the pack, uncached
//	}
//
// # Caveats
//
// A pack is checked against its trailing SHA-1 before it is served, and an
// entry that fails the check is removed: a torn write or a damaged disk
// never reaches a client. Requests for one key while it is being filled
// wait for it (one walk for a burst of identical clones), each at most
// until its own context ends.
package packcache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is a directory of packs bounded to Max bytes. Its mutex guards the
// maps only and is never held during I/O.
type Cache struct {
	dir string
	max int64
	// MaxWait bounds how long Lookup waits for another caller's fill
	// before it gives up on the cache for this request (a slow client
	// reading the first clone must not hold the others). Open sets 30 s.
	MaxWait time.Duration

	mu      sync.Mutex
	entries map[string]*entry        // committed packs
	total   int64                    // their bytes
	filling map[string]chan struct{} // keys being filled; closed when done

	hits, misses atomic.Int64
}

type entry struct {
	size int64
	used time.Time
}

// Open opens (creating it) the cache in dir, bounded to max bytes. Packs
// left from an earlier run are kept; unfinished ones are removed.
func Open(dir string, max int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("packcache: %w", err)
	}
	c := &Cache{dir: dir, max: max, MaxWait: 30 * time.Second, entries: map[string]*entry{}, filling: map[string]chan struct{}{}}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("packcache: %w", err)
	}
	for _, de := range names {
		name := de.Name()
		info, err := de.Info()
		key, ok := strings.CutSuffix(name, ".pack")
		if err != nil || !ok || !validKey(key) {
			os.Remove(filepath.Join(dir, name)) // a temp file of a fill that never finished
			continue
		}
		c.entries[key] = &entry{size: info.Size(), used: info.ModTime()}
		c.total += info.Size()
	}
	c.evict()
	return c, nil
}

// validKey accepts the keys uploadpack builds: 64 lowercase hex digits.
func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	for _, r := range key {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Stats are the hits and misses since Open, and the bytes held.
func (c *Cache) Stats() (hits, misses, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits.Load(), c.misses.Load(), c.total
}

// Lookup returns the cached pack of key, or, when there is none, a Writer
// with which this caller fills it. While another caller fills key it
// waits, at most MaxWait (then it returns neither: the caller writes its
// pack without the cache) and at most until ctx ends (then it returns
// ctx's error).
func (c *Cache) Lookup(ctx context.Context, key string) (*Reader, *Writer, error) {
	if !validKey(key) {
		return nil, nil, fmt.Errorf("packcache: bad key %q", key)
	}
	for {
		c.mu.Lock()
		e, cached := c.entries[key]
		wait, busy := c.filling[key]
		if !cached && !busy {
			done := make(chan struct{})
			c.filling[key] = done
			c.mu.Unlock()
			c.misses.Add(1)
			return nil, c.newWriter(key, done), nil
		}
		if cached {
			e.used = time.Now()
		}
		c.mu.Unlock()
		if busy {
			if !c.await(ctx, wait) {
				return nil, nil, ctx.Err()
			}
			continue
		}
		r, err := c.open(key)
		if err == nil {
			c.hits.Add(1)
			return r, nil, nil
		}
		c.drop(key) // damaged or gone: fill it again
	}
}

// await waits for a fill to end, at most MaxWait: it reports false when
// it gave up (ctx ended, or MaxWait passed: then ctx.Err() is nil and
// Lookup returns neither a reader nor a writer).
func (c *Cache) await(ctx context.Context, fill <-chan struct{}) bool {
	t := time.NewTimer(c.MaxWait)
	defer t.Stop()
	select {
	case <-fill:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// drop forgets key and removes its file.
func (c *Cache) drop(key string) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.total -= e.size
		delete(c.entries, key)
	}
	c.mu.Unlock()
	os.Remove(c.path(key))
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key+".pack") }

// evict removes the least recently used entries until the cache fits.
func (c *Cache) evict() {
	for {
		c.mu.Lock()
		if c.total <= c.max {
			c.mu.Unlock()
			return
		}
		oldest := ""
		for k, e := range c.entries {
			if oldest == "" || e.used.Before(c.entries[oldest].used) {
				oldest = k
			}
		}
		c.mu.Unlock()
		if oldest == "" {
			return
		}
		c.drop(oldest)
	}
}

// Reader is a cached pack, checked against its trailer.
type Reader struct {
	*os.File
	Size int64
}

// open opens key's pack and checks its trailing SHA-1 (a pack ends with
// the SHA-1 of everything before it).
func (c *Cache) open(key string) (*Reader, error) {
	f, err := os.Open(c.path(key))
	if err != nil {
		return nil, err
	}
	if err := checkTrailer(f); err != nil {
		f.Close()
		return nil, err
	}
	info, err := f.Stat()
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Reader{File: f, Size: info.Size()}, nil
}

var errDamaged = errors.New("packcache: cached pack fails its checksum")

func checkTrailer(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	n := info.Size() - sha1.Size
	if n < 12 {
		return errDamaged
	}
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
		return err
	}
	var sum [sha1.Size]byte
	if _, err := f.ReadAt(sum[:], n); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return errDamaged
	}
	return nil
}

// Writer fills one key. Its writes never fail: a cache that cannot write
// (disk full, a pack over the bound) drops the entry at Commit, and the
// clone it tees from goes on.
type Writer struct {
	c    *Cache
	key  string
	done chan struct{}
	f    *os.File
	buf  *bufio.Writer // a pack comes in many small writes: one syscall per 256 KiB
	n    int64
	err  error
}

func (c *Cache) newWriter(key string, done chan struct{}) *Writer {
	w := &Writer{c: c, key: key, done: done}
	if w.f, w.err = os.CreateTemp(c.dir, "fill-*"); w.err == nil {
		w.buf = bufio.NewWriterSize(w.f, 256<<10)
	}
	return w
}

// Write adds p to the pack being cached.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err == nil {
		if w.n+int64(len(p)) > w.c.max {
			w.err = errors.New("packcache: pack larger than the cache")
		} else {
			_, w.err = w.buf.Write(p)
			w.n += int64(len(p))
		}
	}
	return len(p), nil
}

// Commit publishes the pack (unless a write failed) and wakes the callers
// waiting for it.
func (w *Writer) Commit() error {
	defer w.finish()
	if w.err != nil {
		return w.abort(w.err)
	}
	tmp := w.f.Name()
	if err := w.buf.Flush(); err != nil {
		return w.abort(err)
	}
	if err := w.f.Close(); err != nil {
		return w.abort(err)
	}
	w.f = nil
	if err := os.Rename(tmp, w.c.path(w.key)); err != nil {
		os.Remove(tmp)
		return err
	}
	w.c.mu.Lock()
	if old, ok := w.c.entries[w.key]; ok {
		w.c.total -= old.size
	}
	w.c.entries[w.key] = &entry{size: w.n, used: time.Now()}
	w.c.total += w.n
	w.c.mu.Unlock()
	w.c.evict()
	return nil
}

// Abort discards the pack and wakes the callers waiting for it (one of
// them fills it next).
func (w *Writer) Abort() { w.abort(nil); w.finish() }

func (w *Writer) abort(err error) error {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
	return err
}

func (w *Writer) finish() {
	w.c.mu.Lock()
	if w.c.filling[w.key] == w.done {
		delete(w.c.filling, w.key)
		close(w.done)
	}
	w.c.mu.Unlock()
}
