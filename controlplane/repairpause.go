package controlplane

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/internal/retry"
)

// The cluster-wide repair pause (docs/repair.md): while <prefix>repair/paused
// exists, every data node holds its background movers (anti-entropy,
// downtime recovery, hint delivery, drains) where they are; they resume from
// there when it is deleted.

// SetRepairPaused pauses or resumes repair and rebalancing cluster-wide.
func (c *Client) SetRepairPaused(ctx context.Context, paused bool) error {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var err error
	if paused {
		_, err = c.etcd.Put(rctx, c.key("repair", "paused"), time.Now().UTC().Format(time.RFC3339))
	} else {
		_, err = c.etcd.Delete(rctx, c.key("repair", "paused"))
	}
	if err != nil {
		return fmt.Errorf("controlplane: set repair pause: %w", err)
	}
	return nil
}

// WatchRepairPaused calls publish with the pause state now and on every
// change, until ctx is done.
func (c *Client) WatchRepairPaused(ctx context.Context, publish func(bool)) error {
	key := c.key("repair", "paused")
	for ctx.Err() == nil {
		rctx, cancel := c.withTimeout(ctx)
		resp, err := c.etcd.Get(rctx, key)
		cancel()
		if err != nil {
			retry.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		publish(len(resp.Kvs) > 0)
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range c.etcd.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				publish(ev.Type == clientv3.EventTypePut)
			}
		}
		wcancel()
		retry.Sleep(ctx, 100*time.Millisecond)
	}
	return ctx.Err()
}
