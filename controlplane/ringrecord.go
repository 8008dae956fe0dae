package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/internal/retry"
	"github.com/stratum-store/stratum/ring"
)

// RingRecord is the ring as stored under <prefix>ring. The record's etcd
// ModRevision is the ring revision.
type RingRecord struct {
	Replicas int         `json:"replicas"`
	VNodes   int         `json:"vnodes"`
	Nodes    []ring.Node `json:"nodes"`
}

// build turns a record at revision rev into an immutable ring.
func (r RingRecord) build(rev int64) (*ring.Ring, error) {
	return ring.New(rev, r.Nodes, ring.Config{Replicas: r.Replicas, VNodes: r.VNodes})
}

// LoadRing reads the current ring, or fails with ErrNoRing.
func (c *Client) LoadRing(ctx context.Context) (*ring.Ring, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	rec, rev, _, err := c.getRing(rctx)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, ErrNoRing
	}
	return rec.build(rev)
}

// getRing returns the ring record, its ModRevision (0 when absent) and the
// store revision at which it was read.
func (c *Client) getRing(ctx context.Context) (rec RingRecord, modRev, storeRev int64, err error) {
	resp, err := c.etcd.Get(ctx, c.key("ring"))
	if err != nil {
		return RingRecord{}, 0, 0, fmt.Errorf("controlplane: read ring: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return RingRecord{}, 0, resp.Header.Revision, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return RingRecord{}, 0, 0, fmt.Errorf("controlplane: ring record: %w", err)
	}
	return rec, resp.Kvs[0].ModRevision, resp.Header.Revision, nil
}

// JoinRing adds self to the ring, or updates its address and zone if it is
// already a member. The first node to join creates the ring with cfg; later
// joins must agree with the ring's replication factor and vnode count
// (ErrRingConflict otherwise). The update is a compare-and-swap on the ring
// record's revision, retried on contention.
//
// If these credentials may not write the ring (etcd access control, a data
// node's own user), it asks the control plane instead: it publishes a join
// request and waits until the detector leader has added it (access.go).
func (c *Client) JoinRing(ctx context.Context, self ring.Node, cfg ring.Config) error {
	err := c.joinRing(ctx, self, cfg)
	if errors.Is(err, ErrPermissionDenied) {
		return c.requestJoin(ctx, self, cfg)
	}
	return err
}

func (c *Client) joinRing(ctx context.Context, self ring.Node, cfg ring.Config) error {
	return c.updateRing(ctx, func(rec *RingRecord, exists bool) (bool, error) {
		if !exists {
			rec.Replicas, rec.VNodes = cfg.Replicas, cfg.VNodes
		} else if rec.Replicas != cfg.Replicas || rec.VNodes != cfg.VNodes {
			return false, fmt.Errorf("%w: ring has replicas=%d vnodes=%d, node configured with replicas=%d vnodes=%d",
				ErrRingConflict, rec.Replicas, rec.VNodes, cfg.Replicas, cfg.VNodes)
		}
		i := slices.IndexFunc(rec.Nodes, func(n ring.Node) bool { return n.ID == self.ID })
		if i >= 0 && rec.Nodes[i] == self {
			return false, nil
		}
		if i >= 0 {
			rec.Nodes[i] = self
		} else {
			rec.Nodes = append(rec.Nodes, self)
		}
		return true, nil
	})
}

// RemoveFromRing removes node id from the ring. It fails if id is not a
// member, so a removal can never silently do nothing.
func (c *Client) RemoveFromRing(ctx context.Context, id string) error {
	return c.updateRing(ctx, func(rec *RingRecord, exists bool) (bool, error) {
		i := slices.IndexFunc(rec.Nodes, func(n ring.Node) bool { return n.ID == id })
		if !exists || i < 0 {
			return false, fmt.Errorf("controlplane: node %q is not in the ring", id)
		}
		rec.Nodes = slices.Delete(rec.Nodes, i, i+1)
		return true, nil
	})
}

// updateRing applies edit to the current record and writes it back only if
// the record did not change meanwhile. edit reports whether it changed rec.
func (c *Client) updateRing(ctx context.Context, edit func(rec *RingRecord, exists bool) (bool, error)) error {
	key := c.key("ring")
	for attempt := 0; ; attempt++ {
		rctx, cancel := c.withTimeout(ctx)
		rec, rev, _, err := c.getRing(rctx)
		if err == nil {
			err = c.casRing(rctx, key, rec, rev, edit)
		}
		cancel()
		if err != errRetry {
			return err
		}
		if attempt >= 50 {
			return fmt.Errorf("controlplane: ring update lost %d races in a row", attempt)
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
}

var errRetry = fmt.Errorf("controlplane: retry")

func (c *Client) casRing(ctx context.Context, key string, rec RingRecord, rev int64, edit func(*RingRecord, bool) (bool, error)) error {
	_, err := c.casRingWith(ctx, key, rec, rev, edit, txnExtra{})
	return err
}

// txnExtra are conditions and operations to run in the same transaction
// as a ring write; the operations' responses follow the ring write's.
type txnExtra struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
}

// casRingWith is casRing with extra conditions and extra operations in the
// same transaction. A nil response with a nil error means edit changed
// nothing.
func (c *Client) casRingWith(ctx context.Context, key string, rec RingRecord, rev int64, edit func(*RingRecord, bool) (bool, error),
	extra txnExtra) (*clientv3.TxnResponse, error) {
	changed, err := edit(&rec, rev != 0)
	if err != nil || !changed {
		return nil, err
	}
	if _, err := rec.build(1); err != nil {
		return nil, fmt.Errorf("controlplane: edited ring is invalid: %w", err)
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	resp, err := c.etcd.Txn(ctx).
		If(append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}, extra.cmps...)...).
		Then(append([]clientv3.Op{clientv3.OpPut(key, string(val))}, extra.ops...)...).
		Commit()
	if err != nil {
		if IsPermissionDenied(err) {
			return nil, fmt.Errorf("%w: write ring: %v", ErrPermissionDenied, err)
		}
		return nil, fmt.Errorf("controlplane: write ring: %w", err)
	}
	if !resp.Succeeded {
		return nil, errRetry
	}
	c.logger.Info("ring updated", "revision", resp.Header.Revision, "nodes", len(rec.Nodes))
	return resp, nil
}

// WatchRing calls publish with the current ring and then with every new one,
// in revision order, until ctx is done. It survives etcd restarts and
// compactions by re-reading the record. It returns ctx.Err().
func (c *Client) WatchRing(ctx context.Context, publish func(*ring.Ring)) error {
	var last int64
	for ctx.Err() == nil {
		rctx, cancel := c.withTimeout(ctx)
		rec, rev, storeRev, err := c.getRing(rctx)
		cancel()
		if err != nil {
			c.logger.Warn("ring read failed; retrying", "err", err)
			retry.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		last = c.publishIfNewer(rec, rev, last, publish)
		c.watchFrom(ctx, storeRev, &last, publish)
		retry.Sleep(ctx, 100*time.Millisecond)
	}
	return ctx.Err()
}

// watchFrom follows the ring key from store revision from+1 until the watch
// breaks or ctx is done, advancing *last as rings are published.
func (c *Client) watchFrom(ctx context.Context, from int64, last *int64, publish func(*ring.Ring)) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range c.etcd.Watch(wctx, c.key("ring"), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			c.logger.Warn("ring watch broken; re-reading", "err", err)
			return
		}
		for _, ev := range resp.Events {
			var rec RingRecord
			if ev.Type != clientv3.EventTypePut || json.Unmarshal(ev.Kv.Value, &rec) != nil {
				continue
			}
			*last = c.publishIfNewer(rec, ev.Kv.ModRevision, *last, publish)
		}
	}
}

func (c *Client) publishIfNewer(rec RingRecord, rev, last int64, publish func(*ring.Ring)) int64 {
	if rev <= last {
		return last
	}
	r, err := rec.build(rev)
	if err != nil {
		c.logger.Error("ring record invalid; keeping the previous ring", "revision", rev, "err", err)
		return rev
	}
	publish(r)
	return rev
}
