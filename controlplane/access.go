package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/internal/retry"
	"github.com/stratum-store/stratum/ring"
)

// etcd access control (docs/security.md, "etcd access"). Once EnableAccess
// has run, etcd refuses every client without credentials. The control
// plane (its detector and planner, `stratum token`, admin commands) uses
// the root user; each data node its own user, NodeUser(id), whose role may
// read the cluster's records but write only:
//
//	<prefix>nodes/<id>      its liveness record
//	<prefix>members/<id>    its member record
//	<prefix>joins/<id>      its request to be added to the ring
//	<prefix>partitions/p/*  the ref partition records (a primary updates
//	                        its partition's record itself)
//
// So a node cannot rewrite the ring, another node's records or the
// tokens; the detector leader adds nodes to the ring when they ask
// (joins/<id>).

// RootUser is etcd's superuser; EnableAccess creates it.
const RootUser = "root"

// NodeUser is the etcd user and role name of data node id.
func NodeUser(id string) string { return "stratum-node-" + id }

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ErrPermissionDenied: these etcd credentials may not do this.
var ErrPermissionDenied = errors.New("controlplane: etcd permission denied")

// IsPermissionDenied reports whether err is etcd refusing these
// credentials the operation.
func IsPermissionDenied(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, ErrPermissionDenied) ||
		rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(rpctypes.ErrGRPCPermissionDenied)
}

// EnableAccess creates the root user with rootPassword (or sets its
// password if it exists) and turns etcd authentication on. Afterwards this
// client, dialled without credentials, is refused: dial again as RootUser.
func (c *Client) EnableAccess(ctx context.Context, rootPassword string) error {
	if rootPassword == "" {
		return errors.New("controlplane: EnableAccess needs a root password")
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.ensureUser(rctx, RootUser, rootPassword); err != nil {
		return err
	}
	if _, err := c.etcd.RoleAdd(rctx, RootUser); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("controlplane: add role root: %w", err)
	}
	if _, err := c.etcd.UserGrantRole(rctx, RootUser, RootUser); err != nil {
		return fmt.Errorf("controlplane: grant root: %w", err)
	}
	if _, err := c.etcd.AuthEnable(rctx); err != nil {
		return fmt.Errorf("controlplane: enable etcd auth: %w", err)
	}
	return nil
}

func (c *Client) ensureUser(ctx context.Context, name, password string) error {
	_, err := c.etcd.UserAdd(ctx, name, password)
	if errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		_, err = c.etcd.UserChangePassword(ctx, name, password)
	}
	if err != nil {
		return fmt.Errorf("controlplane: user %s: %w", name, err)
	}
	return nil
}

// GrantNode creates (or resets the password of) data node id's etcd user
// and role: read every record of this cluster, write only the node's own
// and the ref partition records.
func (c *Client) GrantNode(ctx context.Context, id, password string) error {
	if !nodeIDPattern.MatchString(id) {
		return fmt.Errorf("controlplane: node ID %q: want 1-64 letters, digits, '.', '_' or '-'", id)
	}
	if password == "" {
		return errors.New("controlplane: GrantNode needs a password")
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	name := NodeUser(id)
	if err := c.ensureUser(rctx, name, password); err != nil {
		return err
	}
	if _, err := c.etcd.RoleAdd(rctx, name); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("controlplane: add role %s: %w", name, err)
	}
	grants := []struct {
		key, end string
		perm     clientv3.PermissionType
	}{
		{c.cfg.Prefix, clientv3.GetPrefixRangeEnd(c.cfg.Prefix), clientv3.PermissionType(clientv3.PermRead)},
		{c.key("nodes", id), "", clientv3.PermissionType(clientv3.PermReadWrite)},
		{c.key("members", id), "", clientv3.PermissionType(clientv3.PermReadWrite)},
		{c.key("joins", id), "", clientv3.PermissionType(clientv3.PermReadWrite)},
		// Ref partition records: a partition's primary shrinks its in_sync
		// list and bumps its epoch itself (docs/refs.md). Granted for all
		// partitions once, not per partition as the planner moves them:
		// every change to etcd's roles makes every client's token out of
		// date, and etcd refuses lease renewals under an old token, so
		// grants that follow each move cost nodes their leases during a
		// rebalance.
		{partitionsPrefix(c), clientv3.GetPrefixRangeEnd(partitionsPrefix(c)), clientv3.PermissionType(clientv3.PermReadWrite)},
	}
	for _, g := range grants {
		if _, err := c.etcd.RoleGrantPermission(rctx, name, g.key, g.end, g.perm); err != nil {
			return fmt.Errorf("controlplane: grant %s on %s: %w", name, g.key, err)
		}
	}
	if _, err := c.etcd.UserGrantRole(rctx, name, name); err != nil {
		return fmt.Errorf("controlplane: grant role %s: %w", name, err)
	}
	return nil
}

// RevokeNode deletes data node id's etcd user and role; the node can no
// longer reach etcd, so it loses its lease and stops serving.
func (c *Client) RevokeNode(ctx context.Context, id string) error {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	name := NodeUser(id)
	_, uerr := c.etcd.UserDelete(rctx, name)
	_, rerr := c.etcd.RoleDelete(rctx, name)
	if errors.Is(uerr, rpctypes.ErrUserNotFound) && errors.Is(rerr, rpctypes.ErrRoleNotFound) {
		return fmt.Errorf("%w: no etcd user %s", ErrUnknownNode, name)
	}
	if uerr != nil && !errors.Is(uerr, rpctypes.ErrUserNotFound) {
		return fmt.Errorf("controlplane: delete user %s: %w", name, uerr)
	}
	if rerr != nil && !errors.Is(rerr, rpctypes.ErrRoleNotFound) {
		return fmt.Errorf("controlplane: delete role %s: %w", name, rerr)
	}
	return nil
}

func partitionsPrefix(c *Client) string { return c.key("partitions", "p") + "/" }

// joinRequest is what a node that may not write the ring puts under
// <prefix>joins/<id>: itself and the ring settings it was configured with.
type joinRequest struct {
	Node     ring.Node `json:"node"`
	Replicas int       `json:"replicas"`
	VNodes   int       `json:"vnodes"`
}

// requestJoin publishes self's join request and waits until the detector
// leader has put self in the ring, or the ring's settings turn out to
// conflict with cfg.
func (c *Client) requestJoin(ctx context.Context, self ring.Node, cfg ring.Config) error {
	val, _ := json.Marshal(joinRequest{Node: self, Replicas: cfg.Replicas, VNodes: cfg.VNodes})
	rctx, cancel := c.withTimeout(ctx)
	_, err := c.etcd.Put(rctx, c.key("joins", self.ID), string(val))
	cancel()
	if err != nil {
		return fmt.Errorf("controlplane: publish join request: %w", err)
	}
	c.logger.Info("may not write the ring: asked the control plane to add this node", "node", self.ID)
	for last := time.Now(); ; {
		rctx, cancel := c.withTimeout(ctx)
		rec, rev, _, err := c.getRing(rctx)
		cancel()
		if time.Since(last) > 10*time.Second {
			c.logger.Warn("still waiting for the control plane's detector leader to add this node to the ring", "node", self.ID, "err", err)
			last = time.Now()
		}
		if err == nil && rev != 0 {
			if rec.Replicas != cfg.Replicas || rec.VNodes != cfg.VNodes {
				return fmt.Errorf("%w: ring has replicas=%d vnodes=%d, node configured with replicas=%d vnodes=%d",
					ErrRingConflict, rec.Replicas, rec.VNodes, cfg.Replicas, cfg.VNodes)
			}
			if slices.Contains(rec.Nodes, self) {
				return nil
			}
		}
		retry.Sleep(ctx, 200*time.Millisecond)
		if ctx.Err() != nil {
			return fmt.Errorf("controlplane: waiting for the control plane to add %s to the ring: %w", self.ID, ctx.Err())
		}
	}
}

// admitJoins is the detector leader's side of requestJoin: every join
// request of a live member (same generation, not DOWN) whose settings
// match the ring is applied, conditioned on the member record not having
// changed and on this leader's election key. The first request creates
// the ring. A request is the node's of its key (joins/<id>): one naming
// another node is skipped and reported (records.go), and one admission
// that fails does not hold up the others.
func (d *detector) admitJoins(ctx context.Context, members map[string]api.Member, live map[string]NodeRecord) error {
	rctx, cancel := d.c.withTimeout(ctx)
	prefix := d.c.key("joins") + "/"
	resp, err := d.c.etcd.Get(rctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fmt.Errorf("controlplane: read join requests: %w", err)
	}
	var errs []error
	for id, jr := range decodeAll(d.c, "joins", prefix, resp.Kvs, idKey, decodeJoin) {
		m, member := members[id]
		rec, alive := live[id]
		if !member || !alive || rec.Generation != m.Generation || m.State == api.StateDown ||
			rec.Addr != jr.Node.Addr || rec.Zone != jr.Node.Zone {
			continue
		}
		err := d.admit(ctx, jr)
		if errors.Is(err, ErrNotLeader) {
			return err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("admit %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (d *detector) admit(ctx context.Context, jr joinRequest) error {
	rctx, cancel := d.c.withTimeout(ctx)
	defer cancel()
	_, memRev, err := d.c.member(rctx, jr.Node.ID)
	if err != nil || memRev == 0 {
		return err
	}
	ringRec, ringRev, _, err := d.c.getRing(rctx)
	if err != nil {
		return err
	}
	if ringRev != 0 && (ringRec.Replicas != jr.Replicas || ringRec.VNodes != jr.VNodes) {
		return nil // the node sees the conflict itself and stops
	}
	if ringRev != 0 && slices.Contains(ringRec.Nodes, jr.Node) {
		return nil
	}
	edit := func(rec *RingRecord, exists bool) (bool, error) {
		if !exists {
			rec.Replicas, rec.VNodes = jr.Replicas, jr.VNodes
		}
		i := slices.IndexFunc(rec.Nodes, func(n ring.Node) bool { return n.ID == jr.Node.ID })
		if i >= 0 {
			rec.Nodes[i] = jr.Node
		} else {
			rec.Nodes = append(rec.Nodes, jr.Node)
		}
		return true, nil
	}
	_, err = d.c.casRingWith(rctx, d.c.key("ring"), ringRec, ringRev, edit, txnExtra{cmps: []clientv3.Cmp{
		d.fence, clientv3.Compare(clientv3.ModRevision(d.c.key("members", jr.Node.ID)), "=", memRev)}})
	if errors.Is(err, errRetry) {
		if !d.stillLeader(ctx) {
			return ErrNotLeader // back to campaigning, not admitting in vain
		}
		return nil // the ring or the member moved; the next tick looks again
	}
	if err == nil {
		d.cfg.Logger.Info("detector: added a node to the ring at its request", "node", jr.Node.ID, "addr", jr.Node.Addr)
	}
	return err
}
