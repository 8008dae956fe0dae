package controlplane

import (
	"context"
	"maps"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/internal/retry"
)

// watchPrefix keeps a map of the records under prefix and calls publish
// with a fresh copy now and after every change, until ctx is done. When the
// watch breaks (compaction, a lost leader) it loads the whole prefix again,
// so no change is missed. key maps a key's suffix after prefix to the map
// key; decode reads a record's value given its map key. A record whose key
// does not parse or whose value does not decode (records.go) counts as
// absent and is reported under kind.
func watchPrefix[K comparable, V any](ctx context.Context, c *Client, prefix, kind string,
	key func(suffix string) (K, bool), decode func(K, *mvccpb.KeyValue) (V, error), publish func(map[K]V)) error {
	for ctx.Err() == nil {
		rctx, cancel := c.withTimeout(ctx)
		resp, err := c.etcd.Get(rctx, prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			retry.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		cur := map[K]V{}
		for _, kv := range resp.Kvs {
			apply(cur, prefix, kv, false, key, decode, c, kind)
		}
		publish(maps.Clone(cur))
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range c.etcd.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				apply(cur, prefix, ev.Kv, ev.Type == clientv3.EventTypeDelete, key, decode, c, kind)
			}
			publish(maps.Clone(cur))
		}
		wcancel()
		retry.Sleep(ctx, 100*time.Millisecond)
	}
	return ctx.Err()
}

// apply puts one record into cur, or removes it.
func apply[K comparable, V any](cur map[K]V, prefix string, kv *mvccpb.KeyValue, deleted bool,
	key func(string) (K, bool), decode func(K, *mvccpb.KeyValue) (V, error), c *Client, kind string) {
	if deleted {
		if k, ok := key(string(kv.Key[min(len(prefix), len(kv.Key)):])); ok {
			delete(cur, k)
		}
		return
	}
	k, v, err := decodeOne(prefix, kv, key, decode)
	if err != nil {
		c.skipBad(kind, kv.Key, err)
		if _, ok := key(string(kv.Key[min(len(prefix), len(kv.Key)):])); ok {
			delete(cur, k)
		}
		return
	}
	cur[k] = v
}
