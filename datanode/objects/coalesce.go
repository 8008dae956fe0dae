package objects

import (
	"context"
	"fmt"
	"sync"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/requestid"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// Coalescing limits: at most coalesceInflight batch requests in flight per
// peer and revision, each of at most coalesceMax objects.
const (
	coalesceInflight = 2
	coalesceMax      = 256
)

// coalescer merges concurrent small replica writes bound for the same peer
// under the same ring revision into one replica-batch request, stored there
// with one synced write. Nothing waits to fill a batch: a write goes out at
// once when fewer than coalesceInflight requests are in flight, and writes
// that arrive meanwhile ride in the next request. Its mutex guards only the
// queues and is never held during I/O or with another lock.
type coalescer struct {
	n      *Server
	mu     sync.Mutex
	queues map[coalesceKey]*peerQueue
}

type coalesceKey struct {
	node ring.Node
	rev  int64
}

type peerQueue struct {
	waiting  []*pendingWrite
	inflight int
}

type pendingWrite struct {
	id   string // request ID
	item store.BatchItem
	done chan Result // buffered: the sender never blocks
}

func newCoalescer(n *Server) *coalescer {
	return &coalescer{n: n, queues: map[coalesceKey]*peerQueue{}}
}

// put writes one small object to rn through the coalescer and waits for its
// own outcome. Each request it rides in is bounded by the peer deadline.
func (c *coalescer) put(ctx context.Context, rn ring.Node, rev int64, oid api.OID, data []byte, stamp api.Stamp) Result {
	pw := &pendingWrite{id: requestid.From(ctx), item: store.BatchItem{OID: oid, Data: data, Stamp: stamp}, done: make(chan Result, 1)}
	key := coalesceKey{rn, rev}
	c.mu.Lock()
	q := c.queues[key]
	if q == nil {
		q = &peerQueue{}
		c.queues[key] = q
	}
	q.waiting = append(q.waiting, pw)
	start := q.inflight < coalesceInflight
	if start {
		q.inflight++
	}
	c.mu.Unlock()
	if start {
		// Not counted in n.inflight: every write it sends belongs to a
		// caller that is, and waits here for it.
		go c.send(key, q)
	}
	return <-pw.done
}

// send drains q in batches until it is empty.
func (c *coalescer) send(key coalesceKey, q *peerQueue) {
	for {
		c.mu.Lock()
		k := min(len(q.waiting), coalesceMax)
		batch := q.waiting[:k:k]
		q.waiting = q.waiting[k:]
		if k == 0 {
			q.inflight--
			if q.inflight == 0 {
				delete(c.queues, key)
			}
		}
		c.mu.Unlock()
		if k == 0 {
			return
		}
		c.deliver(key, batch)
	}
}

func (c *coalescer) deliver(key coalesceKey, batch []*pendingWrite) {
	items := make([]store.BatchItem, len(batch))
	idx := make([]int, len(batch))
	ids := make([]string, len(batch))
	for i, pw := range batch {
		items[i], idx[i], ids[i] = pw.item, i, pw.id
	}
	// The batch request carries the first writer's request ID; the others
	// are logged here, so each request ID leads to the batch it rode in.
	c.n.logger.Debug("coalesced replica batch", "replica", key.node.ID, "request_id", ids[0], "request_ids", ids)
	res, err := c.n.PutGroup(requestid.With(c.n.life, ids[0]), key.node, items, idx, key.rev)
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
