package lincheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Compact constructors for hand-written histories on key "k". Times are
// plain integers; an Unknown operation has no return.
func rd(c int, v string, call, ret int64) Op {
	return Op{Client: c, Kind: Read, Key: "k", Value: v, Call: call, Return: ret}
}

func cas(c int, old, new string, call, ret int64) Op {
	return Op{Client: c, Kind: CAS, Key: "k", Old: old, New: new, Call: call, Return: ret}
}

// conflict is a refused CAS that reported the current value cur.
func conflict(c int, old, new, cur string, call, ret int64) Op {
	return Op{Client: c, Kind: CAS, Key: "k", Old: old, New: new, Outcome: Conflict,
		Value: cur, ValueKnown: true, Call: call, Return: ret}
}

// refused is a refused CAS that did not say what the value was.
func refused(c int, old, new string, call, ret int64) Op {
	return Op{Client: c, Kind: CAS, Key: "k", Old: old, New: new, Outcome: Conflict, Call: call, Return: ret}
}

func lost(c int, old, new string, call int64) Op {
	return Op{Client: c, Kind: CAS, Key: "k", Old: old, New: new, Outcome: Unknown, Call: call}
}

func failed(op Op) Op { op.Outcome = Failed; return op }

func on(key string, op Op) Op { op.Key = key; return op }

func mustCheck(t *testing.T, ops []Op, want bool) Result {
	t.Helper()
	res := Check(ops, 10*time.Second)
	if res.Unknown {
		t.Fatalf("checker timed out: %s", res.Info)
	}
	if res.Linearizable != want {
		t.Fatalf("Linearizable = %t; want %t; info: %s", res.Linearizable, want, res.Info)
	}
	return res
}

func TestCheckHistories(t *testing.T) {
	f := func(name string, want bool, ops ...Op) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			t.Helper()
			mustCheck(t, ops, want)
		})
	}
	f("sequential", true,
		rd(0, "", 0, 1), cas(0, "", "a", 2, 3), rd(0, "a", 4, 5), cas(1, "a", "b", 6, 7),
		rd(1, "b", 8, 9), conflict(0, "a", "c", "b", 10, 11), refused(0, "a", "c", 12, 13),
		cas(0, "b", "", 14, 15), rd(1, "", 16, 17), cas(1, "", "d", 18, 19), rd(0, "d", 20, 21))
	f("sequential out of order recording", true,
		rd(0, "a", 4, 5), cas(0, "", "a", 2, 3), rd(0, "", 0, 1))
	f("sequential read before write sees it", false,
		rd(0, "a", 0, 1), cas(0, "", "a", 2, 3))
	f("sequential CAS from wrong old", false,
		cas(0, "", "a", 0, 1), cas(0, "x", "b", 2, 3))
	f("concurrent CAS one wins", true,
		cas(0, "", "a", 0, 10), conflict(1, "", "b", "a", 1, 9), refused(2, "", "c", 2, 8),
		rd(3, "", 0, 3), rd(3, "a", 4, 12), rd(0, "a", 11, 12), rd(1, "a", 11, 13))
	f("concurrent CAS chain", true,
		cas(0, "", "a", 0, 10), cas(1, "a", "b", 1, 9), rd(2, "b", 11, 12))
	f("concurrent read sees old or new", true,
		rd(1, "", 0, 5), cas(0, "", "a", 1, 2), rd(2, "a", 1, 6))
	f("touching intervals are concurrent", true,
		cas(0, "", "a", 0, 5), rd(1, "", 5, 6))
	f("stale read", false,
		cas(0, "", "a", 0, 1), rd(1, "", 2, 3))
	f("stale read after second write", false,
		cas(0, "", "a", 0, 1), cas(0, "a", "b", 2, 3), rd(1, "a", 4, 5))
	f("stale read after delete", false,
		cas(0, "", "a", 0, 1), cas(0, "a", "", 2, 3), rd(1, "a", 4, 5))
	f("double win from absent", false,
		cas(0, "", "a", 0, 5), cas(1, "", "b", 1, 6))
	f("double win from a value", false,
		cas(2, "", "x", 0, 1), cas(0, "x", "a", 2, 5), cas(1, "x", "b", 3, 6))
	f("read of a value nobody wrote", false,
		cas(0, "", "a", 0, 1), rd(1, "z", 2, 3))
	f("read of a value only a conflict proposed", false,
		cas(0, "", "a", 0, 1), refused(1, "", "b", 2, 3), rd(1, "b", 4, 5))
	f("unknown CAS later read", true,
		lost(0, "", "a", 0), rd(1, "", 1, 2), rd(1, "a", 5, 6), rd(2, "a", 7, 8))
	f("unknown CAS never observed", true,
		lost(0, "", "a", 0), rd(1, "", 5, 6), rd(1, "", 7, 8))
	f("unknown CAS never applied, later CAS from old", true,
		lost(0, "", "a", 0), cas(1, "", "b", 5, 6), rd(1, "b", 7, 8))
	f("unknown CAS seen then unseen", false,
		lost(0, "", "a", 0), rd(1, "a", 5, 6), rd(1, "", 7, 8))
	f("unknown CAS seen before its call", false,
		rd(1, "a", 0, 1), lost(0, "", "a", 5))
	f("unknown CAS from an old that never held", false,
		lost(0, "x", "a", 0), rd(1, "a", 5, 6))
	f("two unknown CAS from the same old both seen", false,
		lost(0, "", "a", 0), lost(1, "", "b", 0), rd(2, "a", 5, 6), rd(2, "b", 7, 8))
	f("unknown CAS chained", true,
		lost(0, "", "a", 0), lost(1, "a", "b", 0), rd(2, "a", 5, 6), rd(2, "b", 7, 8))
	f("conflict reports a value that was not current", false,
		cas(0, "", "a", 0, 1), conflict(1, "", "b", "q", 2, 3))
	f("conflict reports a stale value", false,
		cas(0, "", "a", 0, 1), cas(0, "a", "b", 2, 3), conflict(1, "", "c", "a", 4, 5))
	f("conflict reports the expected value", false,
		cas(0, "", "a", 0, 1), conflict(1, "a", "b", "a", 2, 3))
	f("conflict without value while old was current", false,
		cas(0, "", "a", 0, 1), refused(1, "a", "b", 2, 3))
	f("failed CAS dropped", true,
		cas(0, "", "a", 0, 5), failed(cas(1, "", "b", 1, 6)), rd(2, "a", 7, 8))
	f("failed CAS value read", false,
		failed(cas(1, "", "b", 0, 1)), rd(2, "b", 2, 3))
}

func TestCheckPartitionsByKey(t *testing.T) {
	var ops []Op
	for i := range 200 {
		key := fmt.Sprintf("refs/heads/b%03d", i)
		c := i % 7
		ops = append(ops,
			on(key, cas(c, "", "a", int64(i), int64(i)+10)),
			on(key, rd(c+1, "a", int64(i)+11, int64(i)+12)),
			on(key, cas(c+2, "a", "b", int64(i)+13, int64(i)+20)),
			on(key, conflict(c+3, "a", "c", "b", int64(i)+21, int64(i)+22)))
	}
	// A write on one key does not hide another key's absence.
	ops = append(ops,
		on("refs/heads/x", cas(0, "", "x", 1000, 1001)),
		on("refs/heads/y", rd(1, "", 1002, 1003)))
	res := mustCheck(t, ops, true)
	if res.Ops != len(ops) {
		t.Fatalf("Ops = %d; want %d", res.Ops, len(ops))
	}

	bad := append(ops, on("refs/heads/b117", rd(9, "a", 1000, 1001)))
	res = mustCheck(t, bad, false)
	if !strings.Contains(res.Info, "on 1 of 202 keys (refs/heads/b117)") {
		t.Fatalf("Info does not name the one bad key: %s", res.Info)
	}
}

func TestCheckCounts(t *testing.T) {
	ops := []Op{
		cas(0, "", "a", 0, 1),
		failed(cas(1, "", "b", 0, 1)),
		{Client: 2, Kind: Read, Key: "k", Outcome: Unknown, Call: 2},
		lost(3, "a", "c", 2),
		rd(4, "a", 3, 4),
	}
	res := mustCheck(t, ops, true)
	if got, want := [3]int{res.Ops, res.Dropped, res.UnknownOps}, [3]int{3, 2, 1}; got != want {
		t.Fatalf("[Ops Dropped UnknownOps] = %v; want %v", got, want)
	}
	if res := Check(nil, time.Second); !res.Linearizable || res.Ops != 0 {
		t.Fatalf("empty history: got %+v; want linearizable with 0 ops", res)
	}
}

func TestCheckRejectsInvalidOps(t *testing.T) {
	f := func(op Op, want string) {
		t.Helper()
		res := Check([]Op{op}, time.Second)
		if res.Linearizable || !strings.Contains(res.Info, want) {
			t.Fatalf("Check(%+v) = %+v; want not linearizable with %q", op, res, want)
		}
	}
	f(Op{Kind: Read, Outcome: Conflict}, "a read cannot conflict")
	f(Op{Kind: Kind(7)}, "neither Read nor CAS")
	f(Op{Kind: CAS, Outcome: Outcome(9)}, "is not one of")
	f(rd(0, "", 5, 4), "before its call")
	f(rd(-1, "", 0, 1), "negative")
}

func TestCheckViolationInfo(t *testing.T) {
	res := mustCheck(t, []Op{cas(0, "", "a", 0, 1), rd(1, "", 2, 3)}, false)
	t.Log(res.Info)
	for _, want := range []string{"key k:", "c0 cas(<none> -> a) ok @[0,1]", "c1 read -> <none> @[2,3]"} {
		if !strings.Contains(res.Info, want) {
			t.Fatalf("Info lacks %q: %s", want, res.Info)
		}
	}
}

func TestRecorder(t *testing.T) {
	rec := NewRecorder()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				call := rec.Begin()
				rec.End(Op{Client: c, Kind: Read, Key: fmt.Sprint(c), Call: call})
			}
		}()
	}
	wg.Wait()
	ops := rec.Ops()
	if len(ops) != 400 {
		t.Fatalf("recorded %d ops; want 400", len(ops))
	}
	last := map[int]int64{}
	for _, op := range ops {
		if op.Return < op.Call || op.Call < last[op.Client] {
			t.Fatalf("op %+v: timestamps not monotonic (previous return %d)", op, last[op.Client])
		}
		last[op.Client] = op.Return
	}
	rec.End(Op{Call: 1, Return: 2})
	if got := rec.Ops()[400].Return; got != 2 {
		t.Fatalf("End overwrote a set Return: got %d; want 2", got)
	}
	mustCheck(t, ops, true)
}

func TestVisualize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.html")
	ops := []Op{cas(0, "", "a", 0, 1), rd(1, "", 2, 3), lost(2, "a", "b", 1)}
	if err := Visualize(ops, path); err != nil {
		t.Fatalf("Visualize: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "b) unknown") {
		t.Fatalf("visualization lacks html or the operations (%d bytes)", len(b))
	}
	if err := Visualize([]Op{{Kind: Read, Outcome: Conflict}}, path); err == nil {
		t.Fatal("Visualize accepted an invalid op")
	}
}

// fakeRefs is an in-memory linearizable ref table: each operation takes
// effect atomically under the lock, between its Begin and its End.
type fakeRefs struct {
	mu   sync.Mutex
	refs map[string]string
}

func (f *fakeRefs) read(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refs[key]
}

func (f *fakeRefs) cas(key, old, new string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur := f.refs[key]; cur != old {
		return cur, false
	}
	f.refs[key] = new
	return new, true
}

// runFake drives clients against a fakeRefs on a few keys. Every fifth CAS
// loses its answer (Unknown), whether or not it applied.
func runFake(t *testing.T, clients, perClient int) []Op {
	t.Helper()
	rec, refs := NewRecorder(), &fakeRefs{refs: map[string]string{}}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				key := fmt.Sprintf("refs/heads/k%d", (c+i)%4)
				op := Op{Client: c, Key: key, Call: rec.Begin()}
				if i%3 == 0 {
					op.Kind, op.Value = Read, refs.read(key)
				} else {
					op.Kind, op.Old, op.New = CAS, refs.read(key), fmt.Sprintf("c%di%d", c, i)
					if cur, ok := refs.cas(key, op.Old, op.New); !ok {
						op.Outcome, op.Value, op.ValueKnown = Conflict, cur, true
					}
					if i%5 == 4 {
						op.Outcome, op.Value, op.ValueKnown = Unknown, "", false
					}
				}
				rec.End(op)
			}
		}()
	}
	wg.Wait()
	return rec.Ops()
}

func TestCheckRealConcurrentHistory(t *testing.T) {
	ops := runFake(t, 6, 150)
	res := mustCheck(t, ops, true)
	if res.UnknownOps == 0 || res.Ops != len(ops) {
		t.Fatalf("got %s; want all %d ops checked, some unknown", counts(res), len(ops))
	}
	// A read of the initial (absent) value on a busy key after every
	// operation ended is stale unless the last write deleted it, which
	// runFake never does.
	end := ops[0].Return
	for _, op := range ops {
		end = max(end, op.Return, op.Call)
	}
	stale := append(ops, Op{Client: 6, Kind: Read, Key: "refs/heads/k1", Call: end + 1, Return: end + 2})
	mustCheck(t, stale, false)
}
