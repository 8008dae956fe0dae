package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// NodeRecord is what a live node publishes under <prefix>nodes/<id>.
type NodeRecord struct {
	ID         string `json:"id"`
	Addr       string `json:"addr"`
	Zone       string `json:"zone,omitempty"`
	Generation string `json:"generation"`
	// Started is the process start time, for operators only: nothing that
	// decides safety reads it.
	Started time.Time `json:"started"`
}

// Lease is a node's registration: its record lives as long as the lease is
// kept alive. Done is closed when the lease is lost (etcd unreachable past the
// TTL, or revoked); the node must then stop serving as that registration.
type Lease struct {
	id     clientv3.LeaseID
	c      *Client
	done   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Done is closed when the lease is lost or released.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Close stops the keepalive and revokes the lease, deleting the node record
// at once rather than after the TTL.
func (l *Lease) Close(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		select {
		case <-l.done:
			l.cancel()
			l.wg.Wait()
			return // already lost: nothing to revoke
		default:
		}
		l.cancel()
		l.wg.Wait()
		rctx, cancel := l.c.withTimeout(ctx)
		defer cancel()
		_, err = l.c.etcd.Revoke(rctx, l.id)
	})
	return err
}

// Register publishes self as a new process of this generation, attached to
// a new lease of ttl that is kept alive in the background, and sets its
// member record to JOINING under the new generation. It succeeds when the ID
// has no live lease record or its member is DOWN; otherwise it waits for the
// old lease to expire until ctx is done, then fails with ErrNodeIDInUse.
func (c *Client) Register(ctx context.Context, self ring.Node, generation string, ttl time.Duration) (*Lease, error) {
	return c.registerLoop(ctx, self, generation, ttl, false)
}

// Reregister renews the registration of a running process whose lease was
// lost (etcd unreachable past the TTL). It keeps the member's state, and
// fails with ErrFenced if the generation was replaced or declared DOWN.
func (c *Client) Reregister(ctx context.Context, self ring.Node, generation string, ttl time.Duration) (*Lease, error) {
	return c.registerLoop(ctx, self, generation, ttl, true)
}

func (c *Client) registerLoop(ctx context.Context, self ring.Node, gen string, ttl time.Duration, renew bool) (*Lease, error) {
	rec, err := json.Marshal(NodeRecord{ID: self.ID, Addr: self.Addr, Zone: self.Zone, Generation: gen, Started: time.Now()})
	if err != nil {
		return nil, err
	}
	for {
		lease, err := c.tryRegister(ctx, self.ID, gen, rec, ttl, renew)
		if err != ErrNodeIDInUse {
			return lease, err
		}
		c.logger.Info("node id held by another live generation; waiting for its lease", "node", self.ID)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s (%v)", ErrNodeIDInUse, self.ID, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tryRegister is one registration transaction. Its conditions pin the member
// record's revision, so a concurrent registration or state change makes it
// retry rather than overwrite.
func (c *Client) tryRegister(ctx context.Context, id, gen string, rec []byte, ttl time.Duration, renew bool) (*Lease, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	m, memRev, err := c.member(rctx, id)
	if err != nil {
		return nil, err
	}
	nodeKey, memKey := c.key("nodes", id), c.key("members", id)
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(memKey), "=", memRev)}
	switch {
	case renew && (memRev == 0 || m.Generation != gen || m.State == api.StateDown):
		return nil, fmt.Errorf("%w: member %s is %s at generation %q", ErrFenced, id, m.State, m.Generation)
	case renew || m.State != api.StateDown:
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(nodeKey), "=", 0))
	}
	if !renew {
		state := api.StateJoining
		if m.State == api.StateDraining { // a restart does not cancel a drain
			state = api.StateDraining
		}
		m = api.Member{ID: id, State: state, Generation: gen, SuspectEvents: m.SuspectEvents}
	}
	mval, _ := json.Marshal(m)
	grant, err := c.etcd.Grant(rctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return nil, fmt.Errorf("controlplane: grant lease: %w", err)
	}
	resp, err := c.etcd.Txn(rctx).If(cmps...).
		Then(clientv3.OpPut(nodeKey, string(rec), clientv3.WithLease(grant.ID)), clientv3.OpPut(memKey, string(mval))).
		Commit()
	if err != nil || !resp.Succeeded {
		vctx, vcancel := context.WithTimeout(context.WithoutCancel(rctx), c.cfg.RequestTimeout)
		c.etcd.Revoke(vctx, grant.ID)
		vcancel()
		if err != nil {
			return nil, fmt.Errorf("controlplane: register %s: %w", id, err)
		}
		return nil, ErrNodeIDInUse
	}
	return c.keepAlive(grant.ID)
}

func (c *Client) keepAlive(id clientv3.LeaseID) (*Lease, error) {
	kctx, cancel := context.WithCancel(context.Background())
	ch, err := c.etcd.KeepAlive(kctx, id)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("controlplane: keepalive: %w", err)
	}
	l := &Lease{id: id, c: c, done: make(chan struct{}), cancel: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(l.done)
		for range ch {
		}
	}()
	return l, nil
}

// Nodes returns the records of every live node, keyed by ID.
func (c *Client) Nodes(ctx context.Context) (map[string]NodeRecord, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Get(rctx, c.key("nodes")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("controlplane: list nodes: %w", err)
	}
	out := make(map[string]NodeRecord, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var rec NodeRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("controlplane: node record %s: %w", kv.Key, err)
		}
		out[rec.ID] = rec
	}
	return out, nil
}
