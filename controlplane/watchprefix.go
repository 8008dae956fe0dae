package controlplane

import (
	"context"
	"maps"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/internal/retry"
)

// prefixWatch says how to follow the records under prefix: keyOf maps a
// key's suffix after prefix to the map key; decode reads a record's value
// given its map key. A record whose key does not parse or whose value does
// not decode (records.go) counts as absent and is reported under kind.
type prefixWatch[K comparable, V any] struct {
	c      *Client
	prefix string
	kind   string
	keyOf  func(suffix string) (K, bool)
	decode func(K, *mvccpb.KeyValue) (V, error)
}

// watchPrefix keeps a map of the records under w.prefix and calls publish
// with a fresh copy now and after every change, until ctx is done. When
// the watch breaks (compaction, a lost leader) it loads the whole prefix
// again, so no change is missed.
func watchPrefix[K comparable, V any](ctx context.Context, w prefixWatch[K, V], publish func(map[K]V)) error {
	c := w.c
	for ctx.Err() == nil {
		rctx, cancel := c.withTimeout(ctx)
		resp, err := c.etcd.Get(rctx, w.prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			retry.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		cur := map[K]V{}
		for _, kv := range resp.Kvs {
			w.apply(cur, kv, false)
		}
		publish(maps.Clone(cur))
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range c.etcd.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				w.apply(cur, ev.Kv, ev.Type == clientv3.EventTypeDelete)
			}
			publish(maps.Clone(cur))
		}
		wcancel()
		retry.Sleep(ctx, 100*time.Millisecond)
	}
	return ctx.Err()
}

// apply puts one record into cur, or removes it.
func (w prefixWatch[K, V]) apply(cur map[K]V, kv *mvccpb.KeyValue, deleted bool) {
	suffix := string(kv.Key[min(len(w.prefix), len(kv.Key)):])
	if deleted {
		if k, ok := w.keyOf(suffix); ok {
			delete(cur, k)
		}
		return
	}
	k, v, err := decodeOne(w.prefix, kv, w.keyOf, w.decode)
	if err != nil {
		w.c.skipBad(w.kind, kv.Key, err)
		if _, ok := w.keyOf(suffix); ok {
			delete(cur, k)
		}
		return
	}
	cur[k] = v
}
