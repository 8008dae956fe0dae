package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stratum-store/stratum/api/objid"
)

var ctx = context.Background()

func TestRoundTrip(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	th := int(cfg.LargeThreshold)
	var want Stats
	seen := map[objid.OID]bool{} // tiny sizes give the same bytes twice
	f := func(algo objid.Algorithm, size int, text, viaReader bool) {
		t.Helper()
		seed := uint64(size)<<3 | uint64(algo)<<2 | b2u(text)<<1 | b2u(viaReader)
		data := randomBytes(seed, size)
		if text {
			data = textBytes(seed, size)
		}
		oid := mustOID(t, algo, data)
		var created bool
		var err error
		if viaReader {
			created, err = s.PutReader(ctx, oid, bytes.NewReader(data), int64(size))
		} else {
			created, err = s.Put(ctx, oid, data)
		}
		if err != nil || created == seen[oid] {
			t.Fatalf("put %s %d bytes text=%t reader=%t: created=%t err=%v; want %t, nil", algo, size, text, viaReader, created, err, !seen[oid])
		}
		if !seen[oid] {
			want.Objects++
			want.Bytes += int64(size)
		}
		seen[oid] = true
		if got, err := s.Stat(ctx, oid); err != nil || got != int64(size) {
			t.Fatalf("Stat = %d, %v; want %d, nil", got, err, size)
		}
		obj, err := s.Get(ctx, oid)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if (obj.Body != nil) != (size > th) || obj.Size != int64(size) {
			t.Fatalf("Get %d bytes: Size=%d Body set=%t; want Size=%d Body set=%t", size, obj.Size, obj.Body != nil, size, size > th)
		}
		if obj.Body != nil {
			obj.Body.Close()
		}
		if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
			t.Fatalf("%s %d bytes text=%t: read back differs", algo, size, text)
		}
		checkEncoding(t, s, oid, size, text)
	}
	for _, size := range []int{0, 1, 4 << 10, 1 << 20, th + 1} {
		for _, algo := range []objid.Algorithm{objid.SHA1, objid.SHA256} {
			for _, text := range []bool{true, false} {
				f(algo, size, text, false)
				f(algo, size, text, true)
			}
		}
	}
	if got := s.Stats(); got != want {
		t.Fatalf("Stats = %+v; want %+v", got, want)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// checkEncoding checks where and how an object was stored: compressible
// objects (of a useful size) compressed, random ones raw.
func checkEncoding(t *testing.T, s *Store, oid objid.OID, size int, text bool) {
	t.Helper()
	raw, err := s.rawValue(oid)
	if err != nil {
		t.Fatalf("raw value: %v", err)
	}
	if small := int64(size) <= s.cfg.LargeThreshold; small != (raw[0] == codecLog) {
		t.Fatalf("%d bytes: index codec %d; want the value log (%d) exactly for objects up to the threshold", size, raw[0], codecLog)
	}
	v, err := s.storedValue(oid)
	if err != nil {
		t.Fatalf("stored value: %v", err)
	}
	wantCodec := map[[2]bool]byte{{false, false}: codecRaw, {false, true}: codecS2,
		{true, false}: codecFileRaw, {true, true}: codecFileZstd}[[2]bool{int64(size) > s.cfg.LargeThreshold, text && size >= 1<<10}]
	if v[0] != wantCodec {
		t.Fatalf("%d bytes text=%t: codec %d; want %d", size, text, v[0], wantCodec)
	}
	if v[0] == codecFileRaw || v[0] == codecFileZstd {
		fi, err := os.Stat(s.paths.objectPath(oid))
		if err != nil {
			t.Fatalf("object file: %v", err)
		}
		if (v[0] == codecFileRaw) != (fi.Size() == int64(size)) {
			t.Fatalf("codec %d: file holds %d bytes for a %d-byte object", v[0], fi.Size(), size)
		}
	}
}

// TestRoundTrip64MiB streams an object far above the threshold from a
// generator and compares digests, never holding it whole.
func TestRoundTrip64MiB(t *testing.T) {
	const size = 64 << 20
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	for _, algo := range []objid.Algorithm{objid.SHA256, objid.SHA1} {
		gen := func() io.Reader { return io.LimitReader(chacha(uint64(algo)), size) }
		h := objid.NewHasher(algo)
		io.Copy(h, gen())
		oid, err := h.Sum()
		if err != nil {
			t.Fatal(err)
		}
		if created, err := s.PutReader(ctx, oid, gen(), size); err != nil || !created {
			t.Fatalf("PutReader: created=%t err=%v; want true, nil", created, err)
		}
		obj, err := s.Get(ctx, oid)
		if err != nil || obj.Body == nil || obj.Size != size {
			t.Fatalf("Get: %+v, %v; want a body of %d bytes", obj, err, size)
		}
		back := objid.NewHasher(algo)
		n, err := io.Copy(back, obj.Body)
		obj.Body.Close()
		if err != nil || n != size {
			t.Fatalf("read body: %d bytes, %v; want %d, nil", n, err, size)
		}
		if err := objid.Check(oid, back); err != nil {
			t.Fatalf("body read back: %v", err)
		}
	}
	if got, want := s.Stats(), (Stats{Objects: 2, Bytes: 2 * size}); got != want {
		t.Fatalf("Stats = %+v; want %+v", got, want)
	}
}

// assertAbsent checks that a failed put left nothing: no index entry, no
// object file, no temp file.
func assertAbsent(t *testing.T, s *Store, oid objid.OID) {
	t.Helper()
	if _, err := s.Stat(ctx, oid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat after failed put: %v; want ErrNotFound", err)
	}
	if _, err := os.Stat(s.paths.objectPath(oid)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("object file after failed put: %v; want not exist", err)
	}
	assertNoTempFiles(t, s)
	if got := s.Stats(); got != (Stats{}) {
		t.Fatalf("Stats after failed put = %+v; want zero", got)
	}
}

func TestPutDigestMismatchStoresNothing(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	for _, size := range []int{0, 100, int(cfg.LargeThreshold) + 1} {
		data := textBytes(1, size)
		wrong := mustOID(t, objid.SHA1, append([]byte("x"), data...))
		if _, err := s.Put(ctx, wrong, data); !errors.Is(err, objid.ErrDigestMismatch) {
			t.Fatalf("Put %d bytes under a wrong OID: %v; want ErrDigestMismatch", size, err)
		}
		assertAbsent(t, s, wrong)
		if _, err := s.PutReader(ctx, wrong, bytes.NewReader(data), int64(size)); !errors.Is(err, objid.ErrDigestMismatch) {
			t.Fatalf("PutReader %d bytes under a wrong OID: %v; want ErrDigestMismatch", size, err)
		}
		assertAbsent(t, s, wrong)
	}
}

func TestPutSHA1CollisionRejected(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "sha1-collision", "sha-mbles-1.bin")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("collision pair: %v", err)
	}
	h := objid.NewHasher(objid.SHA1)
	h.Write(data)
	if _, err := h.Sum(); !errors.Is(err, objid.ErrCollision) {
		t.Skipf("%s does not trigger collision detection: %v", path, err)
	}
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	oid := mustOID(t, objid.SHA1, []byte("any sha1 will do"))
	if _, err := s.Put(ctx, oid, data); !errors.Is(err, objid.ErrCollision) {
		t.Fatalf("Put of a colliding file: %v; want ErrCollision", err)
	}
	assertAbsent(t, s, oid)
}

func TestPutReaderSizeMismatchStoresNothing(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	for _, size := range []int{1, 100, int(cfg.LargeThreshold) + 1, int(cfg.LargeThreshold) + 300<<10} {
		data := randomBytes(2, size)
		oid := mustOID(t, objid.SHA256, data)
		f := func(body []byte, what string) {
			t.Helper()
			_, err := s.PutReader(ctx, oid, bytes.NewReader(body), int64(size))
			if !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("%d-byte object, %s body: %v; want ErrSizeMismatch", size, what, err)
			}
			assertAbsent(t, s, oid)
		}
		f(data[:size-1], "short")
		f(append(data[:size:size], 0), "long")
		f(nil, "empty")
	}
	if _, err := s.PutReader(ctx, mustOID(t, objid.SHA1, nil), bytes.NewReader(nil), -1); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("PutReader size -1: %v; want ErrSizeMismatch", err)
	}
}

func TestPutTooLarge(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.LargeThreshold, cfg.MaxObjectSize = 1<<10, 4<<10
	s := mustOpen(t, cfg)
	data := textBytes(3, 4<<10+1)
	oid := mustOID(t, objid.SHA1, data)
	if _, err := s.Put(ctx, oid, data); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put above MaxObjectSize: %v; want ErrTooLarge", err)
	}
	if _, err := s.PutReader(ctx, oid, bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutReader above MaxObjectSize: %v; want ErrTooLarge", err)
	}
	assertAbsent(t, s, oid)
	if created, err := s.Put(ctx, mustOID(t, objid.SHA1, data[:4<<10]), data[:4<<10]); err != nil || !created {
		t.Fatalf("Put at MaxObjectSize: created=%t err=%v; want true, nil", created, err)
	}
}

func TestPutIdempotent(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	for _, size := range []int{10, int(cfg.LargeThreshold) + 1} {
		data := textBytes(4, size)
		oid := mustOID(t, objid.SHA256, data)
		if created, err := s.Put(ctx, oid, data); err != nil || !created {
			t.Fatalf("first put: created=%t err=%v; want true, nil", created, err)
		}
		before := s.Stats()
		if created, err := s.Put(ctx, oid, data); err != nil || created {
			t.Fatalf("second Put: created=%t err=%v; want false, nil", created, err)
		}
		if created, err := s.PutReader(ctx, oid, bytes.NewReader(data), int64(size)); err != nil || created {
			t.Fatalf("second PutReader: created=%t err=%v; want false, nil", created, err)
		}
		bad := append([]byte("y"), data[1:]...)
		if _, err := s.PutReader(ctx, oid, bytes.NewReader(bad), int64(size)); !errors.Is(err, objid.ErrDigestMismatch) {
			t.Fatalf("re-put of bad bytes for a stored OID: %v; want ErrDigestMismatch", err)
		}
		if got := s.Stats(); got != before {
			t.Fatalf("Stats after repeated puts = %+v; want %+v", got, before)
		}
		if got := mustGet(t, s, oid); !bytes.Equal(got, data) {
			t.Fatal("object changed by repeated puts")
		}
	}
}

func TestConcurrentPutsOneCreated(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.LargeThreshold = 16 << 10
	s := mustOpen(t, cfg)
	for _, size := range []int{1000, 200 << 10} {
		data := randomBytes(5, size)
		oid := mustOID(t, objid.SHA1, data)
		var wg sync.WaitGroup
		results := make(chan error, 16)
		var mu sync.Mutex
		created := 0
		for i := range 16 {
			wg.Go(func() {
				var c bool
				var err error
				if i%2 == 0 {
					c, err = s.Put(ctx, oid, data)
				} else {
					c, err = s.PutReader(ctx, oid, bytes.NewReader(data), int64(size))
				}
				results <- err
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(results)
		for err := range results {
			if err != nil {
				t.Fatalf("concurrent put: %v", err)
			}
		}
		if created != 1 {
			t.Fatalf("%d-byte object: %d of 16 concurrent puts reported created; want 1", size, created)
		}
	}
	if got := s.Stats().Objects; got != 2 {
		t.Fatalf("Stats.Objects = %d; want 2", got)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.LargeThreshold = 8 << 10
	s := mustOpen(t, cfg)
	objects := map[objid.OID][]byte{}
	for i := range 40 {
		data := textBytes(uint64(i), i*i*20)
		if i%3 == 0 {
			data = randomBytes(uint64(i), i*i*20)
		}
		oid := mustOID(t, objid.Algorithm(1+i%2), data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		objects[oid] = data
	}
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := mustOpen(t, cfg)
	if got := s2.Stats(); got != before {
		t.Fatalf("Stats after reopen = %+v; want %+v", got, before)
	}
	for oid, data := range objects {
		if got := mustGet(t, s2, oid); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after reopen", oid)
		}
	}
}

func TestClosedStore(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	oid := mustOID(t, objid.SHA1, []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v; want nil", err)
	}
	f := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%s after Close: %v; want ErrClosed", what, err)
		}
	}
	f("Close", s.Close())
	_, err := s.Put(ctx, oid, []byte("x"))
	f("Put", err)
	_, err = s.PutReader(ctx, oid, strings.NewReader("x"), 1)
	f("PutReader", err)
	_, err = s.Get(ctx, oid)
	f("Get", err)
	_, err = s.Stat(ctx, oid)
	f("Stat", err)
}

func TestInvalidOIDAndDoneContext(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	if _, err := s.Put(ctx, objid.OID{}, nil); !errors.Is(err, objid.ErrInvalid) {
		t.Fatalf("Put with the zero OID: %v; want ErrInvalidOID", err)
	}
	if _, err := s.Get(ctx, objid.OID{}); !errors.Is(err, objid.ErrInvalid) {
		t.Fatalf("Get with the zero OID: %v; want ErrInvalidOID", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	oid := mustOID(t, objid.SHA1, nil)
	if _, err := s.Put(done, oid, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a done ctx: %v; want context.Canceled", err)
	}
	assertAbsent(t, s, oid)
}

// cancelingReader cancels its context once it has served after bytes.
type cancelingReader struct {
	r      io.Reader
	after  int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.after -= n; c.after <= 0 {
		c.cancel()
	}
	return n, err
}

func TestPutReaderStopsWhenContextEnds(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	size := 4 << 20
	data := randomBytes(6, size)
	oid := mustOID(t, objid.SHA256, data)
	cctx, cancel := context.WithCancel(ctx)
	r := &cancelingReader{r: bytes.NewReader(data), after: 1 << 20, cancel: cancel}
	if _, err := s.PutReader(cctx, oid, r, int64(size)); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutReader canceled mid-body: %v; want context.Canceled", err)
	}
	assertAbsent(t, s, oid)
}

func TestOpenCleansUp(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	size := int(cfg.LargeThreshold) + 1
	var large []objid.OID // indexed, raw; compressed; then both forgotten
	for i, data := range [][]byte{randomBytes(7, size), textBytes(7, size), randomBytes(8, size), textBytes(8, size)} {
		oid := mustOID(t, objid.SHA1, data)
		if _, err := s.Put(ctx, oid, data); err != nil {
			t.Fatal(err)
		}
		if i >= 2 {
			if err := s.forget(oid); err != nil {
				t.Fatal(err)
			}
		}
		large = append(large, oid)
	}
	small := []byte("stored inline")
	smallOID := mustOID(t, objid.SHA1, small)
	if _, err := s.Put(ctx, smallOID, small); err != nil {
		t.Fatal(err)
	}
	s.Close()

	write := func(path string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte("leftover"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(s.paths.tmpDir(), "put-123"))
	garbage := mustOID(t, objid.SHA256, []byte("orphan"))
	write(s.paths.objectPath(garbage))
	write(s.paths.objectPath(smallOID))
	stranger := filepath.Join(s.paths.objectsDir(), "ab", "not-an-oid")
	write(stranger)
	write(filepath.Join(s.paths.objectsDir(), "README"))

	s2 := mustOpen(t, cfg)
	assertNoTempFiles(t, s2)
	for _, oid := range []objid.OID{garbage, smallOID} {
		if _, err := os.Stat(s2.paths.objectPath(oid)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("unindexed file %s after Open: %v; want removed", oid, err)
		}
	}
	if _, err := os.Stat(stranger); err != nil {
		t.Fatalf("unknown file after Open: %v; want left alone", err)
	}
	for _, oid := range large {
		if got, err := s2.Stat(ctx, oid); err != nil || got != int64(size) {
			t.Fatalf("large object %s after Open: Stat = %d, %v; want %d (indexed or adopted)", oid, got, err, size)
		}
		mustGet(t, s2, oid)
	}
	if got, want := s2.Stats(), (Stats{Objects: 5, Bytes: 4*int64(size) + int64(len(small))}); got != want {
		t.Fatalf("Stats = %+v; want %+v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), want string) {
		t.Helper()
		c := DefaultConfig("/data")
		mutate(&c)
		err := c.Validate()
		got := fmt.Sprint(err)
		if want == "" && err != nil || want != "" && !strings.Contains(got, want) {
			t.Fatalf("Validate() = %v; want an error containing %q", err, want)
		}
	}
	f(func(c *Config) {}, "")
	f(func(c *Config) { c.LargeThreshold, c.MaxObjectSize = 0, 0 }, "")
	f(func(c *Config) { c.Dir = "" }, "Config.Dir must not be empty")
	f(func(c *Config) { c.LargeThreshold = -1 }, "Config.LargeThreshold must be >= 0")
	f(func(c *Config) { c.LargeThreshold = MaxLargeThreshold + 1 }, "Config.LargeThreshold must be <=")
	f(func(c *Config) { c.MaxObjectSize = -5 }, "Config.MaxObjectSize must be >= 0")
	if _, err := Open(Config{}); err == nil || !strings.Contains(err.Error(), "Config.Dir") {
		t.Fatalf("Open(Config{}) = %v; want the Validate error", err)
	}
}

// A large object is stream-compressed only when a sample of its start
// shrinks below 75 %: bytes that shrink less, as a Git pack's do (its
// objects are zlib streams already), are stored raw, and text is still
// compressed. The middle case is random blocks of 100 bytes, one in five a
// repeat of an earlier one: the trial shrinks them to between 75 % and 90 %.
func TestLargeObjectCompressionBar(t *testing.T) {
	cfg, _ := testConfig(t)
	s := mustOpen(t, cfg)
	size := int(s.cfg.LargeThreshold) + 100<<10
	packLike := make([]byte, 0, size+100)
	rng := rand.New(rand.NewPCG(7, 8))
	for len(packLike) < size {
		if len(packLike) >= 100 && rng.IntN(5) == 0 { // a block seen before
			at := rng.IntN(len(packLike)/100) * 100
			packLike = append(packLike, packLike[at:at+100]...)
			continue
		}
		for range 100 {
			packLike = append(packLike, byte(rng.Uint32()))
		}
	}
	packLike = packLike[:size]
	trial := s.codecs.trial.EncodeAll(packLike[:sampleSize], nil)
	if r := float64(len(trial)) / sampleSize; r < 0.75 || r > 0.90 {
		t.Fatalf("the test's bytes shrink to %.0f %% in the trial; want between 75 and 90", r*100)
	}
	text := bytes.Repeat([]byte("a line of a log file, 0123456789\n"), size/33+1)[:size]
	for _, c := range []struct {
		name string
		data []byte
		want byte
	}{{"zlib-like", packLike, codecFileRaw}, {"text", text, codecFileZstd}} {
		oid := mustOID(t, objid.SHA256, c.data)
		if _, err := s.PutReader(ctx, oid, bytes.NewReader(c.data), int64(len(c.data))); err != nil {
			t.Fatal(err)
		}
		v, err := s.storedValue(oid)
		if err != nil {
			t.Fatal(err)
		}
		if v[0] != c.want {
			t.Errorf("%s: codec %d; want %d", c.name, v[0], c.want)
		}
		if got := mustGet(t, s, oid); !bytes.Equal(got, c.data) {
			t.Errorf("%s: read back differs", c.name)
		}
	}
}
