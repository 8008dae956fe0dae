package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
)

// Partition records (docs/refs.md):
//
//	<prefix>partitions/config   api.PartitionConfig, written once
//	<prefix>partitions/p/<id>   api.Partition; its ModRevision is the epoch
//
// Every write of a record is a transaction conditioned on the epoch it was
// computed from, so a stale writer (a deposed primary, a planner that lost
// its leadership, a plan computed before a failover) changes nothing.

func (c *Client) partitionKey(id int) string {
	return c.key("partitions", "p", fmt.Sprintf("%05d", id))
}

// EnsurePartitionConfig stores cfg unless a configuration already exists,
// and returns the one in force: the partition count is fixed when the
// cluster is created.
func (c *Client) EnsurePartitionConfig(ctx context.Context, cfg api.PartitionConfig) (api.PartitionConfig, error) {
	if cfg.Count < 1 || cfg.Replicas < 1 {
		return cfg, fmt.Errorf("controlplane: partition config needs count and replicas >= 1, got %+v", cfg)
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	key := c.key("partitions", "config")
	val, _ := json.Marshal(cfg)
	resp, err := c.etcd.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return cfg, fmt.Errorf("controlplane: partition config: %w", err)
	}
	if resp.Succeeded {
		return cfg, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	var cur api.PartitionConfig
	if len(kvs) == 0 || json.Unmarshal(kvs[0].Value, &cur) != nil {
		return cfg, errors.New("controlplane: unreadable partition config")
	}
	return cur, nil
}

// PartitionConfig reads the partition configuration; ok is false before the
// cluster has one.
func (c *Client) PartitionConfig(ctx context.Context) (cfg api.PartitionConfig, ok bool, err error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Get(rctx, c.key("partitions", "config"))
	if err != nil {
		return cfg, false, fmt.Errorf("controlplane: partition config: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return cfg, false, nil
	}
	return cfg, true, json.Unmarshal(resp.Kvs[0].Value, &cfg)
}

// Partitions reads every partition record (a linearizable read). A record
// that does not decode or whose value names another partition than its
// key is skipped and reported (records.go).
func (c *Client) Partitions(ctx context.Context) (map[int]api.Partition, error) {
	parts, _, err := c.partitions(ctx)
	return parts, err
}

// partitions is Partitions, and how many records exist, readable or not.
func (c *Client) partitions(ctx context.Context) (map[int]api.Partition, int, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	prefix := partitionsPrefix(c)
	resp, err := c.etcd.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("controlplane: list partitions: %w", err)
	}
	return decodeAll(c, "partitions", prefix, resp.Kvs, partitionID, decodePartition), len(resp.Kvs), nil
}

// WatchPartitions calls publish with every partition record now and after
// every change, until ctx is done. Each map is a fresh copy.
func (c *Client) WatchPartitions(ctx context.Context, publish func(map[int]api.Partition)) error {
	return watchPrefix(ctx, prefixWatch[int, api.Partition]{c, partitionsPrefix(c), "partitions", partitionID, decodePartition}, publish)
}

// UpdatePartition writes next as partition next.ID's record if the record
// is still at epoch (0: must not exist) and every extra condition holds. It
// returns the new epoch, or an error wrapping api.ErrStaleEpoch when a
// condition failed.
func (c *Client) UpdatePartition(ctx context.Context, epoch int64, next api.Partition, extra ...clientv3.Cmp) (int64, error) {
	key := c.partitionKey(next.ID)
	next.Epoch = 0
	val, _ := json.Marshal(next)
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", epoch)
	if epoch == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Txn(rctx).If(append([]clientv3.Cmp{cmp}, extra...)...).Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return 0, fmt.Errorf("controlplane: write partition %d: %w", next.ID, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w: partition %d is no longer at epoch %d (or a condition failed)", api.ErrStaleEpoch, next.ID, epoch)
	}
	return resp.Header.Revision, nil
}

// DropDownFromInSync writes next, a record that no longer lists node among
// the in-sync replicas, on the condition that node has no live lease and is
// DOWN (or removed). A new primary uses it during its takeover for a member
// that cannot answer: a member still holding its lease might be an old
// primary serving reads, so it must answer instead.
func (c *Client) DropDownFromInSync(ctx context.Context, epoch int64, next api.Partition, node string) (int64, error) {
	rctx, cancel := c.withTimeout(ctx)
	m, memRev, err := c.member(rctx, node)
	cancel()
	if err != nil {
		return 0, err
	}
	if memRev != 0 && m.State != api.StateDown {
		return 0, fmt.Errorf("%w: %s is %s, not DOWN", api.ErrBadState, node, m.State)
	}
	return c.UpdatePartition(ctx, epoch, next,
		clientv3.Compare(clientv3.CreateRevision(c.key("nodes", node)), "=", 0),
		clientv3.Compare(clientv3.ModRevision(c.key("members", node)), "=", memRev))
}
