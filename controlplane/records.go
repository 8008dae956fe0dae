package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/stratum-store/stratum/api"
)

// This file decodes the records data nodes write (docs/security.md,
// "identity"). A record's identity is its key: with etcd access control a
// node may write only nodes/<id>, members/<id> and joins/<id> under its
// own ID, so the ID inside the value proves nothing. A record whose value
// names another ID than its key, or that does not decode, is skipped,
// counted (BadRecords) and logged with its key; the rest of the list is
// used. One bad record never stops the detector, the admissions or the
// planner.

// errIdentity: a record's value names another ID than its key.
var errIdentity = errors.New("controlplane: the record's value names another ID than its key")

// badRecords counts skipped records per kind ("nodes", "members",
// "joins", "partitions", "tokens").
type badRecords struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (b *badRecords) add(kind string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == nil {
		b.n = map[string]uint64{}
	}
	b.n[kind]++
}

// BadRecords returns how many records this client has skipped so far, per
// key prefix ("nodes", "members", "joins", "partitions", "tokens"),
// because they did not decode or named another ID than their key. Each
// one was also logged at WARN with its key.
func (c *Client) BadRecords() map[string]uint64 {
	c.bad.mu.Lock()
	defer c.bad.mu.Unlock()
	return maps.Clone(c.bad.n)
}

// skipBad counts and logs a record that decodeAll or a watch skipped.
func (c *Client) skipBad(kind string, key []byte, err error) {
	c.bad.add(kind)
	c.logger.Warn("controlplane: bad record skipped", "prefix", kind, "key", string(key), "err", err)
}

// decodeAll decodes every record in kvs, keyed by key(suffix after
// prefix); a record whose key does not parse or whose value does not
// decode is skipped and reported (skipBad), never fatal.
func decodeAll[K comparable, V any](c *Client, kind, prefix string, kvs []*mvccpb.KeyValue,
	key func(string) (K, bool), decode func(K, *mvccpb.KeyValue) (V, error)) map[K]V {
	out := make(map[K]V, len(kvs))
	for _, kv := range kvs {
		k, v, err := decodeOne(prefix, kv, key, decode)
		if err != nil {
			c.skipBad(kind, kv.Key, err)
			continue
		}
		out[k] = v
	}
	return out
}

func decodeOne[K comparable, V any](prefix string, kv *mvccpb.KeyValue,
	key func(string) (K, bool), decode func(K, *mvccpb.KeyValue) (V, error)) (K, V, error) {
	var v V
	if len(kv.Key) < len(prefix) {
		var k K
		return k, v, fmt.Errorf("controlplane: key %q is outside %q", kv.Key, prefix)
	}
	k, ok := key(string(kv.Key[len(prefix):]))
	if !ok {
		return k, v, fmt.Errorf("controlplane: key %q names no record", kv.Key)
	}
	v, err := decode(k, kv)
	return k, v, err
}

// idKey is the map key of a record under nodes/, members/, joins/ or
// tokens/: the key's suffix, which must be a node ID's shape.
func idKey(suffix string) (string, bool) { return suffix, nodeIDPattern.MatchString(suffix) }

// partitionID is the map key of a record under partitions/p/.
func partitionID(suffix string) (int, bool) {
	id, err := strconv.Atoi(suffix)
	return id, err == nil && id >= 0
}

func sameID(key, value string) error {
	if key != value {
		return fmt.Errorf("%w: key %q, value %q", errIdentity, key, value)
	}
	return nil
}

func decodeNode(id string, kv *mvccpb.KeyValue) (NodeRecord, error) {
	var rec NodeRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, err
	}
	return rec, sameID(id, rec.ID)
}

func decodeMember(id string, kv *mvccpb.KeyValue) (api.Member, error) {
	var m api.Member
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		return m, err
	}
	return m, sameID(id, m.ID)
}

func decodeJoin(id string, kv *mvccpb.KeyValue) (joinRequest, error) {
	var jr joinRequest
	if err := json.Unmarshal(kv.Value, &jr); err != nil {
		return jr, err
	}
	return jr, sameID(id, jr.Node.ID)
}

func decodePartition(id int, kv *mvccpb.KeyValue) (api.Partition, error) {
	var p api.Partition
	if err := json.Unmarshal(kv.Value, &p); err != nil {
		return p, err
	}
	p.Epoch = kv.ModRevision
	return p, sameID(strconv.Itoa(id), strconv.Itoa(p.ID))
}

func decodeToken(id string, kv *mvccpb.KeyValue) (api.Token, error) {
	var t api.Token
	if err := json.Unmarshal(kv.Value, &t); err != nil {
		return t, err
	}
	return t, sameID(id, t.ID)
}
