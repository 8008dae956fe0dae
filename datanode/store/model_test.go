package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api/objid"
)

// TestStoreModel runs seeded random operations against one store, some
// one at a time and some in concurrent bursts, and checks the store
// against a model of what each object must read as (modelspec_test.go):
// every result after every sequential step, and after every burst an
// order of its operations that explains their results and the state left.
// A read of something deleted, a lost acknowledged object, a corrupt read
// of an intact object, an unexpected error: each is a failure.
//
// The store has a 2 KiB large-object threshold and 2 KiB value log
// segments (most records get one of their own), so large files, segment
// rotation and collection all happen; during a burst a collector runs
// back to back besides the goroutines.
//
//	STRATUM_STORE_MODEL_SEEDS="1 2 3"  the seeds (default 1 2 3)
//	STRATUM_STORE_MODEL_SEED=N         one seed (a replay)
//	STRATUM_STORE_MODEL_OPS=N          operations per seed (default 300)
//
// A seed fixes the operations; a burst's interleaving is up to the
// scheduler, so a replay runs the same operations, not the same schedule.
func TestStoreModel(t *testing.T) {
	seeds, ops := modelSettings(t, []uint64{1, 2, 3}, 300)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := newModelRun(t, seed, ops)
			r.run()
			t.Logf("seed %d: %d operations, %d bursts, %d reopens; collections freed %d bytes alone and %d in bursts",
				seed, r.done, r.bursts, r.reopens, r.freed, r.concFreed.Load())
		})
	}
}

// TestStoreModelPowerLoss is TestStoreModel on the power-loss simulation
// (powerloss_test.go), with power failures among the operations: at each,
// unsynced index and value log bytes are dropped (with a torn tail) and
// the store must come back exactly in the model's state. Plain puts write
// their index unsynced (replay.go), so this checks the replay, the
// checkpoint and the removal markers against every other mechanism: stamps
// and tombstones, batches, Remove, Quarantine, expiry, the collector.
//
//	STRATUM_STORE_MODEL_SEEDS / _SEED / _OPS  as for TestStoreModel
//	                                          (default seeds 1 to 8, 600 operations)
func TestStoreModelPowerLoss(t *testing.T) {
	seeds, ops := modelSettings(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8}, 600)
	crashes, replayed := 0, 0
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := newModelRunOn(t, seed, ops, newPowerLossStorage())
			r.run()
			crashes, replayed = crashes+r.crashes, replayed+r.replayed
			t.Logf("seed %d: %d operations, %d bursts, %d reopens, %d power failures, %d records indexed again by replays",
				seed, r.done, r.bursts, r.reopens, r.crashes, r.replayed)
		})
	}
	if !t.Failed() && (crashes == 0 || replayed == 0) {
		t.Errorf("%d power failures and %d replayed records in all: the seeds did not exercise the replay", crashes, replayed)
	}
}

// modelSettings returns the seeds and operations per seed of a model
// test: the defaults, or STRATUM_STORE_MODEL_SEEDS, _SEED and _OPS.
func modelSettings(t *testing.T, seeds []uint64, ops int) ([]uint64, int) {
	if v := os.Getenv("STRATUM_STORE_MODEL_SEEDS"); v != "" {
		seeds = parseSeeds(t, v)
	}
	if v := os.Getenv("STRATUM_STORE_MODEL_SEED"); v != "" {
		seeds = parseSeeds(t, v)
	}
	if v := os.Getenv("STRATUM_STORE_MODEL_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("STRATUM_STORE_MODEL_OPS=%q: want a positive integer", v)
		}
		ops = n
	}
	return seeds, ops
}

func parseSeeds(t *testing.T, v string) []uint64 {
	var seeds []uint64
	for _, f := range strings.Fields(v) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("seed %q: want an unsigned integer", f)
		}
		seeds = append(seeds, n)
	}
	return seeds
}

// mobject is one object of a run's universe.
type mobject struct {
	oid   objid.OID
	data  []byte
	large bool
}

type modelRun struct {
	t     *testing.T
	seed  uint64
	ops   int
	rng   *rand.Rand
	cfg   Config
	s     *Store
	objs  []mobject
	model []mobj
	// stor, when set, is the power-loss simulation the store runs on
	// (TestStoreModelPowerLoss), and power failures are among the
	// operations.
	stor *powerLossStorage

	done, checked, bursts, collections, reopens, crashes, replayed int
	freed                                                          int64
	concFreed                                                      atomic.Int64 // by collections in bursts
}

func newModelRun(t *testing.T, seed uint64, ops int) *modelRun {
	return newModelRunOn(t, seed, ops, nil)
}

func newModelRunOn(t *testing.T, seed uint64, ops int, stor *powerLossStorage) *modelRun {
	cfg, _ := testConfig(t)
	cfg.LargeThreshold = 2 << 10
	cfg.SegmentSize = 2 << 10
	r := &modelRun{t: t, seed: seed, ops: ops, rng: rand.New(rand.NewPCG(seed, 15)), cfg: cfg}
	for i := range 24 {
		var data []byte
		switch {
		case i == 0:
			data = []byte{} // the empty object
		case i < 16:
			data = r.bytes(seed*100+uint64(i), 1+r.rng.IntN(1800))
		default:
			data = r.bytes(seed*100+uint64(i), int(cfg.LargeThreshold)+1+r.rng.IntN(20<<10))
		}
		algo := objid.SHA256
		if i%3 == 0 {
			algo = objid.SHA1
		}
		r.objs = append(r.objs, mobject{oid: mustOID(t, algo, data), data: data, large: int64(len(data)) > cfg.LargeThreshold})
	}
	r.model = make([]mobj, len(r.objs))
	r.stor = stor
	r.s = r.open()
	return r
}

// open opens the run's store: on the power-loss simulation if the run has
// one, with a checkpoint after every put or almost never, by the run's
// draw, so that replays start from recent checkpoints and from old ones.
func (r *modelRun) open() *Store {
	if r.stor == nil {
		return mustOpen(r.t, r.cfg)
	}
	s := openPowered(r.t, r.cfg, r.stor)
	r.tuneCheckpoints(s)
	return s
}

func (r *modelRun) tuneCheckpoints(s *Store) {
	if r.rng.IntN(4) == 0 {
		s.checkpointEvery = 0
	} else {
		s.checkpointEvery = time.Hour
	}
}

// crash cuts the power between two operations, so every operation before
// was acknowledged and the store must come back in the model's state. A
// copy damaged on disk may come back absent: a replayed record that fails
// its checksum is not indexed.
func (r *modelRun) crash() {
	r.checkAll("before power loss")
	r.s = crashAndReopen(r.t, r.s, r.cfg, r.stor, rand.New(rand.NewPCG(r.seed, uint64(r.crashes))))
	r.tuneCheckpoints(r.s)
	r.crashes++
	r.replayed += r.s.replayed
	for i, m := range r.model {
		if m.st == mDamaged {
			if got, err := r.observe(i); err == nil && got.st == mAbsent {
				r.model[i] = mobj{}
			}
		}
	}
	r.checkAll("after power loss")
}

// bytes returns n bytes, compressible or not, chosen by the run.
func (r *modelRun) bytes(seed uint64, n int) []byte {
	if r.rng.IntN(2) == 0 {
		return textBytes(seed, n)
	}
	return randomBytes(seed, n)
}

func (r *modelRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d, after %d operations: %s\nreplay: STRATUM_STORE_MODEL_SEED=%d STRATUM_STORE_MODEL_OPS=%d go test -race -count=1 -run 'TestStoreModel' ./datanode/store",
		r.seed, r.done, fmt.Sprintf(format, args...), r.seed, r.ops)
}

func (r *modelRun) run() {
	for r.done < r.ops {
		if r.rng.IntN(3) == 0 {
			r.burst()
		} else {
			r.sequential(r.plan(r.rng, nil, false))
			r.done++
		}
		if r.done-r.checked >= 25 {
			r.checkAll("periodic check")
			r.checked = r.done
		}
	}
	r.reopen()
}

// planned is one operation to run, chosen before it runs.
type planned struct {
	kind  string
	obj   int
	stamp objid.Stamp
	at    int64
	items []plannedItem
}

type plannedItem struct {
	obj   int
	stamp objid.Stamp
	bad   bool
}

// plan draws an operation on the objects in hot (all, if nil); the
// operations that damage a copy or reopen the store only when not
// concurrent.
func (r *modelRun) plan(rng *rand.Rand, hot []int, concurrent bool) planned {
	pick := func() int {
		if hot != nil {
			return hot[rng.IntN(len(hot))]
		}
		return rng.IntN(len(r.objs))
	}
	stamp := func() objid.Stamp { return objid.Stamp(rng.IntN(40)) }
	kinds := []string{"put", "put", "putStamped", "putStamped", "putStamped", "putReader", "putReader", "batch", "batch",
		"delete", "delete", "delete", "remove", "get", "get", "expire", "collect", "collect"}
	if !concurrent {
		kinds = append(kinds, "damage", "quarantine", "quarantine", "reopen")
		if r.stor != nil {
			kinds = append(kinds, "crash", "crash", "crash", "crash")
		}
	}
	p := planned{kind: kinds[rng.IntN(len(kinds))], obj: pick(), stamp: stamp(), at: int64(rng.IntN(100))}
	if p.kind == "expire" {
		p.at = int64(rng.IntN(120))
	}
	if p.kind == "batch" {
		n := 1 + rng.IntN(6)
		for range n {
			it := plannedItem{obj: pick(), stamp: stamp(), bad: rng.IntN(12) == 0}
			if len(p.items) > 0 && rng.IntN(3) == 0 { // a duplicate
				it.obj = p.items[rng.IntN(len(p.items))].obj
			}
			p.items = append(p.items, it)
		}
	}
	return p
}

// sequential runs p alone and checks its outcome and the state of what
// it touched against the model.
func (r *modelRun) sequential(p planned) {
	switch p.kind {
	case "collect":
		r.collect()
		return
	case "reopen":
		r.reopen()
		return
	case "crash":
		// Half the time the power fails right after a put of an object
		// the store does not hold, whose index write is the one most
		// likely to be lost.
		var absent []int
		for i, m := range r.model {
			if !r.objs[i].large && (m.st == mAbsent || m.st == mDeleted) {
				absent = append(absent, i)
			}
		}
		if len(absent) > 0 && r.rng.IntN(2) == 0 {
			i := absent[r.rng.IntN(len(absent))]
			kind := []string{"put", "putStamped", "batch"}[r.rng.IntN(3)]
			r.sequential(planned{kind: kind, obj: i, stamp: objid.Stamp(r.rng.IntN(40)), items: []plannedItem{{obj: i, stamp: objid.Stamp(r.rng.IntN(40))}}})
		}
		r.crash()
		return
	case "damage":
		r.damage(p.obj)
		return
	case "expire":
		r.expire(p.at)
		return
	}
	ops := r.exec(p, 0)
	for i, o := range ops {
		next, bad := step(r.model[i], o, r.objs[i].data)
		if bad != "" {
			r.fail("object %d (%s): %s", i, r.objs[i].oid, bad)
		}
		r.model[i] = next
		r.checkOne(i, fmt.Sprintf("after %s", o))
	}
}

func (r *modelRun) collect() {
	freed, err := r.s.CollectValueLog(ctx)
	if err != nil {
		r.fail("CollectValueLog: %v", err)
	}
	r.collections++
	r.freed += freed
}

func (r *modelRun) expire(before int64) {
	want := 0
	for i, m := range r.model {
		if m.st == mDeleted && m.at < before {
			want++
			r.model[i] = mobj{}
		}
	}
	if n, err := r.s.ExpireTombstones(ctx, before); err != nil || n != want {
		r.fail("ExpireTombstones(%d): %d, %v; want %d", before, n, err, want)
	}
}

// reopen closes and opens the store again: nothing changes, and the
// value log's live accounting counted from the index agrees with the one
// kept up to date.
func (r *modelRun) reopen() {
	r.checkAll("before reopen")
	before, err := r.s.ValueLogStats()
	if err != nil {
		r.fail("ValueLogStats: %v", err)
	}
	if err := r.s.Close(); err != nil {
		r.fail("Close: %v", err)
	}
	assertNoTempFiles(r.t, r.s)
	r.s = r.open()
	r.reopens++
	after, err := r.s.ValueLogStats()
	if err != nil || after.LiveBytes != before.LiveBytes {
		r.fail("value log live bytes %d after reopen, %v; %d before", after.LiveBytes, err, before.LiveBytes)
	}
	r.checkAll("after reopen")
}

// damage flips a byte of a present copy on disk: its value log record or
// its file.
func (r *modelRun) damage(i int) {
	if r.model[i].st != mPresent {
		return
	}
	oid := r.objs[i].oid
	if p, ok := r.s.indexedPtr(oid); ok {
		flipByte(r.t, filepath.Join(r.s.paths.vlogDir(), segmentName(p.seg)), p.off+int64(p.n)-1)
	} else {
		path := r.s.paths.objectPath(oid)
		fi, err := os.Stat(path)
		if err != nil {
			r.fail("object %d: stat its file: %v", i, err)
		}
		flipByte(r.t, path, fi.Size()/2)
	}
	r.model[i].st = mDamaged
	r.checkOne(i, "after damage")
}

// exec runs p (not collect, reopen, damage or expire) as goroutine g and
// returns its operation per object it touched.
func (r *modelRun) exec(p planned, g int) map[int]*mop {
	o := r.objs[p.obj]
	out := map[int]*mop{}
	put := func(created bool, err error) {
		out[p.obj] = &mop{kind: kPut, g: g, items: []mitem{{stamp: p.stamp, created: created, err: err}}}
	}
	switch p.kind {
	case "put":
		p.stamp = 0
		put(r.s.Put(ctx, o.oid, o.data))
	case "putStamped":
		put(r.s.PutStamped(ctx, o.oid, o.data, p.stamp))
	case "putReader":
		put(r.s.PutReaderStamped(ctx, o.oid, bytes.NewReader(o.data), int64(len(o.data)), p.stamp))
	case "batch":
		r.execBatch(p, g, out)
	case "delete":
		deleted, err := r.s.Delete(ctx, o.oid, p.stamp, p.at)
		out[p.obj] = &mop{kind: kDelete, g: g, stamp: p.stamp, at: p.at, deleted: deleted, err: err}
	case "remove":
		out[p.obj] = &mop{kind: kRemove, g: g, err: r.s.Remove(ctx, o.oid)}
	case "get":
		out[p.obj] = &mop{kind: kGet, g: g}
		out[p.obj].data, out[p.obj].err = r.read(o.oid)
	case "quarantine":
		out[p.obj] = &mop{kind: kQuarantine, g: g, err: r.s.Quarantine(ctx, o.oid)}
	default:
		r.t.Fatalf("exec of %q", p.kind)
	}
	return out
}

func (r *modelRun) execBatch(p planned, g int, out map[int]*mop) {
	items := make([]BatchItem, len(p.items))
	for k, it := range p.items {
		items[k] = BatchItem{OID: r.objs[it.obj].oid, Data: r.objs[it.obj].data, Stamp: it.stamp}
		if it.bad {
			items[k].Data = []byte("not what the oid says")
		}
		if (g+k)%2 == 1 { // half the items come as a coordinator sends them: encoded values
			items[k].Value, items[k].Data = r.s.Encode(items[k].Data), nil
		}
	}
	res, err := r.s.PutBatch(ctx, items)
	if err != nil { // the whole batch failed: every item's outcome is that error
		res = make([]BatchResult, len(items))
		for k := range res {
			res[k].Err = fmt.Errorf("PutBatch: %w", err)
		}
	}
	for k, it := range p.items {
		mi := mitem{stamp: it.stamp, created: res[k].Created, err: res[k].Err}
		switch {
		case it.bad:
			mi.fail = objid.ErrDigestMismatch
		case r.objs[it.obj].large:
			mi.fail = ErrTooLarge
		}
		if out[it.obj] == nil {
			out[it.obj] = &mop{kind: kBatch, g: g}
		}
		out[it.obj].items = append(out[it.obj].items, mi)
	}
}

// read returns the whole object, from Data or Body.
func (r *modelRun) read(oid objid.OID) ([]byte, error) {
	obj, err := r.s.Get(ctx, oid)
	if err != nil || obj.Body == nil {
		return obj.Data, err
	}
	defer obj.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(obj.Body)
	return buf.Bytes(), err
}

// observe reads what the store holds for object i, as a model state.
func (r *modelRun) observe(i int) (mobj, error) {
	o := r.objs[i]
	e, err := r.s.Meta(ctx, o.oid)
	switch {
	case errors.Is(err, ErrNotFound):
		if _, gerr := r.s.Get(ctx, o.oid); !errors.Is(gerr, ErrNotFound) || errors.Is(gerr, ErrDeleted) {
			return mobj{}, fmt.Errorf("no index entry, but Get says %v", gerr)
		}
		return mobj{}, nil
	case err != nil:
		return mobj{}, fmt.Errorf("Meta: %v", err)
	case e.Deleted:
		return mobj{st: mDeleted, stamp: e.Stamp, at: e.At}, nil
	case e.Size != int64(len(o.data)):
		return mobj{}, fmt.Errorf("Meta size %d; the object has %d bytes", e.Size, len(o.data))
	}
	data, gerr := r.read(o.oid)
	switch {
	case gerr == nil && bytes.Equal(data, o.data):
		return mobj{st: mPresent, stamp: e.Stamp}, nil
	case errors.Is(gerr, ErrCorrupt):
		return mobj{st: mDamaged, stamp: e.Stamp}, nil
	}
	return mobj{}, fmt.Errorf("a copy with stamp %d is indexed, but Get says %d bytes (equal %t), %v", e.Stamp, len(data), bytes.Equal(data, o.data), gerr)
}

func (r *modelRun) checkOne(i int, when string) {
	r.t.Helper()
	got, err := r.observe(i)
	if err != nil || got != r.model[i] {
		r.fail("object %d (%s, %d bytes) %s: store holds %v (%v); model says %v", i, r.objs[i].oid, len(r.objs[i].data), when, got, err, r.model[i])
	}
}

// checkAll checks every object, the counts, and that no put left a temp
// file or a pinned segment.
func (r *modelRun) checkAll(when string) {
	r.t.Helper()
	var want Stats
	for i, m := range r.model {
		r.checkOne(i, when)
		if m.st == mPresent || m.st == mDamaged {
			want.Objects++
			want.Bytes += int64(len(r.objs[i].data))
		}
	}
	if got := r.s.Stats(); got != want {
		r.fail("%s: Stats %+v; model says %+v", when, got, want)
	}
	if entries, _ := os.ReadDir(r.s.paths.tmpDir()); len(entries) != 0 {
		r.fail("%s: %d temp files left (first %s)", when, len(entries), entries[0].Name())
	}
	r.s.live.mu.Lock()
	pinned := len(r.s.live.pins)
	r.s.live.mu.Unlock()
	if pinned != 0 {
		r.fail("%s: %d value log segments still pinned with nothing in flight", when, pinned)
	}
}
