package tests

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// The object history of a workload that puts, deletes and puts again:
// every write with its interval and outcome, every read that got a
// definitive answer (the object, or 404), per OID. A checker then decides,
// for each read, what it had to find (docs/testing.md, "No resurrection"):
//
//   - the object must exist when some put P was acknowledged before the
//     read began, and every delete of the OID that began before the read
//     ended was acknowledged and ended before P began;
//   - the object must be absent when some delete D was acknowledged
//     before the read began, and every put of the OID that began before the
//     read ended was acknowledged and ended before D began;
//   - otherwise either answer is allowed.
//
// A write whose outcome is not an acknowledgement (an error answer, or no
// answer) may have taken effect on some replicas, with a stamp that a
// skewed clock can place after any other operation, so it makes every read
// that does not end before it began undecidable. The two rules never both
// hold. A 404 where the object must exist is a stale read; the object
// where it must be absent is a resurrection.

// writeKind is what a recorded write did.
type writeKind int

const (
	writePut writeKind = iota
	writeDelete
)

// objWrite is one put (single or one item of a batch) or delete.
type objWrite struct {
	kind         writeKind
	began, ended time.Time // ended is the zero time when there was no answer
	acked        bool
}

// objRead is one read that got a definitive answer.
type objRead struct {
	began, ended time.Time
	found        bool
	via          string // e.g. "get via n2", "batch get via n1"
}

// endOf is when w ended, or the far future if nobody knows.
func (w objWrite) endOf() time.Time {
	if w.ended.IsZero() {
		return time.Unix(1<<40, 0)
	}
	return w.ended
}

// expectation is what a read had to find.
type expectation int

const (
	expectEither expectation = iota
	expectPresent
	expectAbsent
)

// expect applies the rules above to a read [began, ended] of an object
// with writes ws.
func expect(ws []objWrite, began, ended time.Time) expectation {
	settledBefore := func(kind writeKind, w objWrite) bool {
		for _, o := range ws {
			if o.kind == kind && o.began.Before(ended) && !(o.acked && o.endOf().Before(w.began)) {
				return false
			}
		}
		return true
	}
	for _, w := range ws {
		if !w.acked || !w.endOf().Before(began) {
			continue
		}
		if w.kind == writePut && settledBefore(writeDelete, w) {
			return expectPresent
		}
		if w.kind == writeDelete && settledBefore(writePut, w) {
			return expectAbsent
		}
	}
	return expectEither
}

// objHistory records writes and reads per OID; safe for concurrent use.
type objHistory struct {
	mu     sync.Mutex
	writes map[api.OID][]objWrite
	reads  map[api.OID][]objRead
}

func newObjHistory() *objHistory {
	return &objHistory{writes: map[api.OID][]objWrite{}, reads: map[api.OID][]objRead{}}
}

func (h *objHistory) write(oid api.OID, w objWrite) {
	h.mu.Lock()
	h.writes[oid] = append(h.writes[oid], w)
	h.mu.Unlock()
}

func (h *objHistory) read(oid api.OID, r objRead) {
	h.mu.Lock()
	h.reads[oid] = append(h.reads[oid], r)
	h.mu.Unlock()
}

// expectNow is what a read of oid beginning now must find.
func (h *objHistory) expectNow(oid api.OID) expectation {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	return expect(h.writes[oid], now, now)
}

// deletesAcked counts acknowledged deletes.
func (h *objHistory) deletesAcked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ws := range h.writes {
		for _, w := range ws {
			if w.kind == writeDelete && w.acked {
				n++
			}
		}
	}
	return n
}

// historyVerdict is what the checker found in a history.
type historyVerdict struct {
	// Judged counts reads whose answer was decided by the rules, of which
	// Absent had to find nothing.
	Judged, Absent int
	// Stale and Resurrected describe the reads that broke the rules.
	Stale, Resurrected []string
}

// check judges every recorded read.
func (h *objHistory) check() historyVerdict {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v historyVerdict
	oids := make([]api.OID, 0, len(h.reads))
	for oid := range h.reads {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i].String() < oids[j].String() })
	for _, oid := range oids {
		for _, r := range h.reads[oid] {
			e := expect(h.writes[oid], r.began, r.ended)
			if e != expectEither {
				v.Judged++
			}
			if e == expectAbsent {
				v.Absent++
			}
			switch {
			case e == expectPresent && !r.found:
				v.Stale = append(v.Stale, h.describe(oid, r, "404, but the object must exist"))
			case e == expectAbsent && r.found:
				v.Resurrected = append(v.Resurrected, h.describe(oid, r, "the object, but it was deleted"))
			}
		}
	}
	return v
}

// describe names a read and the writes of its OID, times relative to the
// read's start.
func (h *objHistory) describe(oid api.OID, r objRead, what string) string {
	s := fmt.Sprintf("%s %s at %s returned %s; writes:", oid, r.via, r.began.Format("15:04:05.000"), what)
	for _, w := range h.writes[oid] {
		kind := map[writeKind]string{writePut: "put", writeDelete: "delete"}[w.kind]
		end := "no answer"
		if !w.ended.IsZero() {
			end = fmt.Sprintf("%+dms", w.ended.Sub(r.began).Milliseconds())
		}
		s += fmt.Sprintf(" %s[%+dms, %s, acked %v]", kind, w.began.Sub(r.began).Milliseconds(), end, w.acked)
	}
	return s
}

// The rules on small histories; times in ms from 0, the read at [100, 110]
// unless said, a write ended at -1 had no answer.
func TestObjectHistoryRules(t *testing.T) {
	at := func(ms int) time.Time { return time.UnixMilli(1_000_000 + int64(ms)) }
	w := func(kind writeKind, began, ended int, acked bool) objWrite {
		o := objWrite{kind: kind, began: at(began), ended: at(ended), acked: acked}
		if ended < 0 {
			o.ended = time.Time{}
		}
		return o
	}
	f := func(name string, want expectation, ws ...objWrite) {
		t.Helper()
		if got := expect(ws, at(100), at(110)); got != want {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
	f("put acked before", expectPresent, w(writePut, 0, 10, true))
	f("put acked during the read", expectEither, w(writePut, 90, 105, true))
	f("put then delete", expectAbsent, w(writePut, 0, 10, true), w(writeDelete, 20, 30, true))
	f("delete then put again", expectPresent, w(writePut, 0, 10, true), w(writeDelete, 20, 30, true), w(writePut, 40, 50, true))
	f("delete overlapping the put", expectEither, w(writePut, 0, 30, true), w(writeDelete, 20, 40, true))
	f("delete during the read", expectEither, w(writePut, 0, 10, true), w(writeDelete, 105, 120, true))
	f("failed put before the delete", expectEither, w(writePut, 0, 10, false), w(writeDelete, 20, 30, true))
	f("unknown put after the delete", expectEither, w(writePut, 0, 10, true), w(writeDelete, 20, 30, true), w(writePut, 40, -1, false))
	f("put after the read began", expectAbsent, w(writePut, 0, 10, true), w(writeDelete, 20, 30, true), w(writePut, 111, 130, true))
	f("failed delete before the put", expectEither, w(writeDelete, 0, 10, false), w(writePut, 20, 30, true))
	f("unacknowledged delete", expectPresent, w(writePut, 0, 10, true), w(writeDelete, 111, -1, false))
	f("never written", expectEither)

	h := newObjHistory()
	oid, _ := api.Digest(api.SHA256, []byte("x"))
	h.write(oid, w(writePut, 0, 10, true))
	h.write(oid, w(writeDelete, 20, 30, true))
	h.read(oid, objRead{began: at(15), ended: at(16), found: true, via: "get"})
	h.read(oid, objRead{began: at(40), ended: at(41), found: true, via: "get"})
	h.read(oid, objRead{began: at(42), ended: at(43), found: false, via: "get"})
	v := h.check()
	if len(v.Resurrected) != 1 || len(v.Stale) != 0 || v.Judged != 3 || v.Absent != 2 {
		t.Fatalf("got %d resurrected, %d stale, %d judged, %d absent; want 1, 0, 3, 2 (%v)", len(v.Resurrected), len(v.Stale), v.Judged, v.Absent, v.Resurrected)
	}
}
