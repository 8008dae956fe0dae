package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/internal/retry"
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
	ttl    time.Duration
	done   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu         sync.Mutex
	validUntil time.Time // monotonic: send time of the last renewal + TTL
}

// ValidUntil is the earliest time etcd may expire the lease, as far as this
// process can tell: the moment it sent the last successful renewal (or the
// grant) plus the TTL etcd granted. etcd starts its TTL when it receives the
// request, which is later, so until ValidUntil (on this process's monotonic
// clock, less a tenth of the TTL for clock-rate drift) no one can have seen
// the lease expire.
// A partition primary serves reads only before it (docs/refs.md).
func (l *Lease) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil
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
	sent := time.Now()
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
	return c.keepAlive(grant.ID, sent, time.Duration(grant.TTL)*time.Second), nil
}

// keepAlive renews the lease every third of its TTL with one KeepAliveOnce
// call each, recording when each successful renewal was sent (which
// clientv3's streaming KeepAlive does not expose). The lease is lost, and
// Done closed, when etcd says it is gone or when no renewal has succeeded
// before ValidUntil.
func (c *Client) keepAlive(id clientv3.LeaseID, sent time.Time, ttl time.Duration) *Lease {
	kctx, cancel := context.WithCancel(context.Background())
	l := &Lease{id: id, c: c, ttl: ttl, done: make(chan struct{}), cancel: cancel, validUntil: sent.Add(ttl - ttl/10)}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(l.done)
		l.renewLoop(kctx)
	}()
	return l
}

func (l *Lease) renewLoop(ctx context.Context) {
	every := max(l.ttl/3, 100*time.Millisecond)
	wait := every
	for {
		retry.Sleep(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		resp, err := l.c.etcd.KeepAliveOnce(rctx, l.id)
		cancel()
		switch {
		case err == nil && resp.TTL > 0:
			ttl := time.Duration(resp.TTL) * time.Second
			l.mu.Lock()
			l.validUntil = sent.Add(ttl - ttl/10) // a tenth of margin for clock-rate drift
			l.mu.Unlock()
			wait = every
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			return
		case time.Now().After(l.ValidUntil()):
			return
		default:
			wait = every / 4 // a transient error: try again soon
		}
	}
}

// Nodes returns the records of every live node, keyed by the ID in their
// key. A record that does not decode or names another ID is skipped and
// reported (records.go).
func (c *Client) Nodes(ctx context.Context) (map[string]NodeRecord, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	prefix := c.key("nodes") + "/"
	resp, err := c.etcd.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("controlplane: list nodes: %w", err)
	}
	return decodeAll(c, "nodes", prefix, resp.Kvs, idKey, decodeNode), nil
}
