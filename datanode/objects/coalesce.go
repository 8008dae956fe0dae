package objects

import (
	"context"
	"fmt"
	"sync"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Coalescing limits: at most coalesceInflight batch write requests (and
// presenceInflight :has requests) in flight per peer and revision, each of
// at most coalesceMax items.
const (
	coalesceInflight = 2
	presenceInflight = 1
	coalesceMax      = 256
)

// batcher merges concurrent calls bound for the same peer under the same
// ring revision into one batch request. Nothing waits to fill a batch: a
// call goes out at once when fewer than b.inflight requests are in
// flight for its key, and calls that arrive meanwhile ride in the next
// request. Its mutex guards only the queues and is never held during I/O
// or with another lock. deliver sends one batch and answers each of its
// items (each item carries its own reply channel).
type batcher[T any] struct {
	mu       sync.Mutex
	queues   map[coalesceKey]*batchQueue[T]
	inflight int // requests in flight per key, at most
	deliver  func(key coalesceKey, batch []T)
}

type coalesceKey struct {
	node ring.Node
	rev  int64
}

type batchQueue[T any] struct {
	waiting  []T
	inflight int
}

func newBatcher[T any](inflight int, deliver func(coalesceKey, []T)) *batcher[T] {
	return &batcher[T]{queues: map[coalesceKey]*batchQueue[T]{}, inflight: inflight, deliver: deliver}
}

// add queues item for key and starts a sender when the key has a free
// slot. The sender is not counted in n.inflight: every item it carries is
// (a write's caller is, and waits for its answer; a presence question is
// counted itself until its answer is sent), so Close waits for it.
func (b *batcher[T]) add(key coalesceKey, item T) {
	b.mu.Lock()
	q := b.queues[key]
	if q == nil {
		q = &batchQueue[T]{}
		b.queues[key] = q
	}
	q.waiting = append(q.waiting, item)
	start := q.inflight < b.inflight
	if start {
		q.inflight++
	}
	b.mu.Unlock()
	if start {
		go b.send(key, q)
	}
}

// send drains q in batches until it is empty.
func (b *batcher[T]) send(key coalesceKey, q *batchQueue[T]) {
	for {
		b.mu.Lock()
		k := min(len(q.waiting), coalesceMax)
		batch := q.waiting[:k:k]
		q.waiting = q.waiting[k:]
		if k == 0 {
			q.inflight--
			if q.inflight == 0 {
				delete(b.queues, key)
			}
		}
		b.mu.Unlock()
		if k == 0 {
			return
		}
		b.deliver(key, batch)
	}
}

// pendingWrite is one small replica write waiting in the write batcher:
// the replica-batch request it rides in is stored there with one synced
// write.
type pendingWrite struct {
	id   string // request ID
	item store.BatchItem
	done chan Result // buffered: the sender never blocks
}

// coalescedPut writes one small object to rn through the write batcher and
// waits for its own outcome. Each request it rides in is bounded by the
// peer deadline.
func (n *Server) coalescedPut(ctx context.Context, rn ring.Node, rev int64, oid api.OID, data []byte, stamp api.Stamp) Result {
	pw := &pendingWrite{id: requestid.From(ctx), item: store.BatchItem{OID: oid, Data: data, Stamp: stamp}, done: make(chan Result, 1)}
	n.writes.add(coalesceKey{rn, rev}, pw)
	return <-pw.done
}

func (n *Server) deliverWrites(key coalesceKey, batch []*pendingWrite) {
	items := make([]store.BatchItem, len(batch))
	idx := make([]int, len(batch))
	ids := make([]string, len(batch))
	for i, pw := range batch {
		items[i], idx[i], ids[i] = pw.item, i, pw.id
	}
	// The batch request carries the first writer's request ID; the others
	// are logged here, so each request ID leads to the batch it rode in.
	n.logger.Debug("coalesced replica batch", "replica", key.node.ID, "request_id", ids[0], "request_ids", ids)
	res, err := n.PutGroup(requestid.With(n.life, ids[0]), key.node, items, idx, key.rev)
	for i, pw := range batch {
		r := Result{node: key.node, Err: err}
		if err == nil {
			r.created = res[i].Created
			if res[i].Code != "" {
				r.Err = fmt.Errorf("%w: replica %s", api.ErrorForCode(res[i].Code), key.node.ID)
				r.Stamp = res[i].Stamp
			}
		}
		pw.done <- r
	}
}

// pendingHas is one presence question waiting in the presence batcher:
// the :has request it rides in asks the peer's index for every OID of the
// batch at once.
type pendingHas struct {
	id      string // request ID
	oid     api.OID
	results chan<- Result // the read's: buffered for every replica it asks, so the sender never blocks
}

// askHas asks rn whether it holds oid (a copy with its stamp, a tombstone
// with its stamp, or nothing) through the presence batcher, so a quorum
// GET's confirmations from one peer share requests, and returns at once:
// the answer, which means what a replica HEAD's does (headReplica) without
// the size, is sent to results. The caller has counted the question in
// n.inflight; it is done once the answer is sent.
func (n *Server) askHas(ctx context.Context, results chan<- Result, rn ring.Node, oid api.OID, rev int64) {
	n.presenceQ.add(coalesceKey{rn, rev}, &pendingHas{id: requestid.From(ctx), oid: oid, results: results})
}

func (n *Server) deliverHas(key coalesceKey, batch []*pendingHas) {
	oids := make([]api.OID, len(batch))
	idx := make([]int, len(batch))
	ids := make([]string, len(batch))
	for i, ph := range batch {
		oids[i], idx[i], ids[i] = ph.oid, i, ph.id
	}
	n.logger.Debug("coalesced presence batch", "replica", key.node.ID, "request_id", ids[0], "request_ids", ids)
	rep, err := n.indexGroup(requestid.With(n.life, ids[0]), key.node, oids, idx, key.rev)
	for i, ph := range batch {
		ph.results <- hasResult(key.node, rep, i, err)
		n.inflight.Done()
	}
}

// hasResult turns answer j of a :has reply into a replica read's Result:
// a copy is found, a tombstone is api.ErrDeleted with its stamp, anything
// else is api.ErrNotFound; a failed request fails every answer.
func hasResult(rn ring.Node, rep indexReply, j int, err error) Result {
	res := Result{node: rn, Err: err}
	if err != nil {
		return res
	}
	present, deleted, stamp := rep.answer(j)
	res.Stamp = stamp
	switch {
	case present:
	case deleted:
		res.Err = &peer.StampedError{Err: fmt.Errorf("%w: replica %s holds a tombstone", api.ErrDeleted, rn.ID), Stamp: res.Stamp}
	default:
		res.Err = fmt.Errorf("%w: replica %s", api.ErrNotFound, rn.ID)
	}
	return res
}
