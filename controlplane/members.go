package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// member reads one member record and its ModRevision (0 if absent). A
// record that does not decode or names another ID than id is an error
// (records.go).
func (c *Client) member(ctx context.Context, id string) (api.Member, int64, error) {
	resp, err := c.etcd.Get(ctx, c.key("members", id))
	if err != nil {
		return api.Member{}, 0, fmt.Errorf("controlplane: read member %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return api.Member{}, 0, nil
	}
	m, err := decodeMember(id, resp.Kvs[0])
	if err != nil {
		return api.Member{}, 0, fmt.Errorf("controlplane: member record %s: %w", id, err)
	}
	return m, resp.Kvs[0].ModRevision, nil
}

// Member reads one member record; ok is false if there is none.
func (c *Client) Member(ctx context.Context, id string) (m api.Member, ok bool, err error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	m, rev, err := c.member(rctx, id)
	return m, rev != 0, err
}

// Members returns every member record, keyed by the ID in its key. A
// record that does not decode or names another ID is skipped and reported
// (records.go).
func (c *Client) Members(ctx context.Context) (map[string]api.Member, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	prefix := c.key("members") + "/"
	resp, err := c.etcd.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("controlplane: list members: %w", err)
	}
	return decodeAll(c, "members", prefix, resp.Kvs, idKey, decodeMember), nil
}

// updateMember applies edit to member id's record in a compare-and-swap on
// its ModRevision, retried on contention. edit returns an error to abort.
// extra conditions and operations join the same transaction.
//
// conds must also hold for the write (else it is skipped with errSkip: the
// world changed since the caller looked); fence is the caller's leadership
// (else ErrNotLeader).
func (c *Client) updateMember(ctx context.Context, id string, edit func(m *api.Member, exists bool) error,
	conds []clientv3.Cmp, fence ...clientv3.Cmp) error {
	key := c.key("members", id)
	for attempt := 0; attempt < 50; attempt++ {
		rctx, cancel := c.withTimeout(ctx)
		m, rev, err := c.member(rctx, id)
		if err == nil {
			err = edit(&m, rev != 0)
		}
		if err != nil {
			cancel()
			return err
		}
		val, _ := json.Marshal(m)
		cmps := append(append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}, conds...), fence...)
		resp, err := c.etcd.Txn(rctx).If(cmps...).Then(clientv3.OpPut(key, string(val))).
			Else(clientv3.OpTxn(fence, nil, nil), clientv3.OpTxn(conds, nil, nil)).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("controlplane: write member %s: %w", id, err)
		}
		if resp.Succeeded {
			return nil
		}
		if !resp.Responses[0].GetResponseTxn().Succeeded {
			return ErrNotLeader
		}
		if !resp.Responses[1].GetResponseTxn().Succeeded {
			return errSkip
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return fmt.Errorf("controlplane: member %s update lost 50 races", id)
}

// MarkActive moves this generation's member record from JOINING to ACTIVE:
// the node is ready.
func (c *Client) MarkActive(ctx context.Context, id, generation string) error {
	return c.updateMember(ctx, id, func(m *api.Member, exists bool) error {
		if !exists || m.Generation != generation || m.State == api.StateDown {
			return ErrFenced
		}
		if m.State == api.StateJoining {
			m.State = api.StateActive
		}
		return nil
	}, nil)
}

// Drain marks a member DRAINING: it takes no new writes as an owner.
func (c *Client) Drain(ctx context.Context, id string) error {
	return c.updateMember(ctx, id, func(m *api.Member, exists bool) error {
		switch {
		case !exists:
			return fmt.Errorf("%w: %q", ErrUnknownNode, id)
		case m.State == api.StateDraining:
			return nil
		case m.State == api.StateDown:
			return fmt.Errorf("%w: %s is DOWN; it cannot hand its objects over (remove it with force once they are repaired)", ErrBadState, id)
		}
		m.State, m.Drained = api.StateDraining, false
		return nil
	}, nil)
}

// MarkDrained records that a DRAINING member's objects all have N copies
// elsewhere. It fails unless generation is the member's current one.
func (c *Client) MarkDrained(ctx context.Context, id, generation string) error {
	return c.updateMember(ctx, id, func(m *api.Member, exists bool) error {
		if !exists || m.Generation != generation || m.State != api.StateDraining {
			return fmt.Errorf("%w: %s is not draining under generation %s", ErrBadState, id, generation)
		}
		m.Drained = true
		return nil
	}, nil)
}

// Remove takes a node out of the ring and deletes its records. Without
// force it refuses an unsafe removal: a node that is not drained, or a ring
// that would be left with fewer nodes than the replication factor.
func (c *Client) Remove(ctx context.Context, id string, force bool) error {
	m, exists, err := c.Member(ctx, id)
	if err != nil {
		return err
	}
	r, err := c.LoadRing(ctx)
	if err != nil {
		return err
	}
	_, inRing := r.Node(id)
	switch {
	case !exists && !inRing:
		return fmt.Errorf("%w: %q", ErrUnknownNode, id)
	case force:
	case m.State != api.StateDraining || !m.Drained:
		return fmt.Errorf("%w: %s is %s and not drained: its objects may have fewer than %d copies elsewhere; drain it first or force",
			ErrUnsafe, id, m.State, r.ReplicationFactor())
	case r.Len()-1 < r.ReplicationFactor():
		return fmt.Errorf("%w: removing %s leaves %d nodes for replication factor %d", ErrUnsafe, id, r.Len()-1, r.ReplicationFactor())
	}
	if !force {
		if err := c.checkNoPartitions(ctx, id); err != nil {
			return err
		}
	}
	resp, err := c.removeRecords(ctx, id)
	if err != nil {
		return err
	}
	// Revoke the removed process's lease too: deleting its record alone
	// would leave the lease renewable, and a partition primary serves reads
	// while its lease is valid (docs/refs.md).
	if kvs := resp.GetResponseRange().Kvs; len(kvs) > 0 && kvs[0].Lease != 0 {
		rctx, cancel := c.withTimeout(ctx)
		defer cancel()
		if _, err := c.etcd.Revoke(rctx, clientv3.LeaseID(kvs[0].Lease)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("controlplane: revoke the lease of removed node %s: %w", id, err)
		}
	}
	return nil
}

// removeRecords takes id out of the ring and deletes its member, node and
// join records, all in one transaction, so the detector leader can never
// see the member without the ring entry and add it back (access.go). It
// returns the response of a read of the node record made in the same
// transaction.
func (c *Client) removeRecords(ctx context.Context, id string) (*etcdserverpb.ResponseOp, error) {
	ops := []clientv3.Op{clientv3.OpGet(c.key("nodes", id)), clientv3.OpDelete(c.key("members", id)),
		clientv3.OpDelete(c.key("nodes", id)), clientv3.OpDelete(c.key("joins", id))}
	key := c.key("ring")
	for attempt := 0; ; attempt++ {
		rctx, cancel := c.withTimeout(ctx)
		rec, rev, _, err := c.getRing(rctx)
		var resp *clientv3.TxnResponse
		if err == nil {
			resp, err = c.casRingWith(rctx, key, rec, rev, func(rec *RingRecord, exists bool) (bool, error) {
				i := slices.IndexFunc(rec.Nodes, func(n ring.Node) bool { return n.ID == id })
				if i >= 0 {
					rec.Nodes = slices.Delete(rec.Nodes, i, i+1)
				}
				return i >= 0, nil
			}, txnExtra{ops: ops})
			if err == nil && resp == nil { // not in the ring: the records alone
				resp, err = c.etcd.Txn(rctx).Then(ops...).Commit()
				if err == nil {
					resp.Responses = append([]*etcdserverpb.ResponseOp{nil}, resp.Responses...)
				}
			}
		}
		cancel()
		switch {
		case err == nil:
			return resp.Responses[1], nil
		case err != errRetry:
			return nil, err
		case attempt >= 50:
			return nil, fmt.Errorf("controlplane: removing %s lost %d races for the ring in a row", id, attempt)
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
}

// WatchMembers calls publish with the full member map now and after every
// change, until ctx is done. Each map is a fresh copy the callee may keep.
func (c *Client) WatchMembers(ctx context.Context, publish func(map[string]api.Member)) error {
	return watchPrefix(ctx, prefixWatch[string, api.Member]{c, c.key("members") + "/", "members", idKey, decodeMember}, publish)
}

// NodeList joins ring entries, member records and lease records into one
// list, sorted by ID.
func (c *Client) NodeList(ctx context.Context) ([]api.NodeStatus, error) {
	members, err := c.Members(ctx)
	if err != nil {
		return nil, err
	}
	live, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.LoadRing(ctx)
	if err != nil && err != ErrNoRing {
		return nil, err
	}
	byID := map[string]*api.NodeStatus{}
	get := func(id string) *api.NodeStatus {
		if byID[id] == nil {
			byID[id] = &api.NodeStatus{ID: id}
		}
		return byID[id]
	}
	if r != nil {
		for _, n := range r.Nodes() {
			s := get(n.ID)
			s.Addr, s.Zone, s.InRing = n.Addr, n.Zone, true
		}
	}
	for id, m := range members {
		s := get(id)
		s.State, s.Generation, s.Drained = m.State, m.Generation, m.Drained
	}
	parts, err := c.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		for _, id := range p.Replicas {
			get(id).Partitions++
		}
	}
	for id, rec := range live {
		s := get(id)
		s.Live = rec.Generation == s.Generation
		if s.Addr == "" {
			s.Addr, s.Zone = rec.Addr, rec.Zone
		}
	}
	out := make([]api.NodeStatus, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, *byID[id])
	}
	return out, nil
}

// checkNoPartitions refuses to remove a node that is still a member of a
// ref partition: the planner moves a DRAINING node's partitions away first.
func (c *Client) checkNoPartitions(ctx context.Context, id string) error {
	parts, err := c.Partitions(ctx)
	if err != nil {
		return err
	}
	held := 0
	for _, p := range parts {
		if p.Has(id) {
			held++
		}
	}
	if held > 0 {
		return fmt.Errorf("%w: %s is still a member of %d ref partitions; wait for the planner to move them (stratum partitions status)", ErrUnsafe, id, held)
	}
	return nil
}
