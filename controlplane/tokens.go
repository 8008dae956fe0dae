package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/internal/retry"
)

// API tokens live under <prefix>tokens/<id> (their records: a name, the
// scopes and the secret's hash; docs/security.md). Nodes watch the prefix,
// so a new token works and a revoked one stops working on every node as
// soon as the watch delivers the change. The cluster secret, which nodes
// present to each other when TLS is off, is <prefix>cluster-secret.

// CreateToken stores rec; an existing id fails (ids are random, so that
// is a collision to retry).
func (c *Client) CreateToken(ctx context.Context, rec api.Token) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	key := c.key("tokens", rec.ID)
	resp, err := c.etcd.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return fmt.Errorf("controlplane: create token: %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("controlplane: token id %s exists", rec.ID)
	}
	return nil
}

// Tokens lists every token record, by name then id.
func (c *Client) Tokens(ctx context.Context) ([]api.Token, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Get(rctx, c.key("tokens")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("controlplane: list tokens: %w", err)
	}
	var out []api.Token
	for _, t := range decodeAll(c, "tokens", c.key("tokens")+"/", resp.Kvs, idKey, decodeToken) {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b api.Token) int {
		if a.Name != b.Name {
			return strings.Compare(a.Name, b.Name)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeToken deletes token id; it reports whether there was one.
func (c *Client) RevokeToken(ctx context.Context, id string) (bool, error) {
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Delete(rctx, c.key("tokens", id))
	if err != nil {
		return false, fmt.Errorf("controlplane: revoke token: %w", err)
	}
	return resp.Deleted > 0, nil
}

// WatchTokens calls publish with every token record, keyed by id, now and
// after every change, until ctx is done.
func (c *Client) WatchTokens(ctx context.Context, publish func(map[string]api.Token)) error {
	return watchPrefix(ctx, prefixWatch[string, api.Token]{c, c.key("tokens") + "/", "tokens", idKey, decodeToken}, publish)
}

// ClusterSecret returns the cluster's shared secret, creating it on first
// use (the first node to ask wins; everyone reads the same one).
func (c *Client) ClusterSecret(ctx context.Context) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := c.key("cluster-secret")
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.etcd.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, hex.EncodeToString(b[:]))).Else(clientv3.OpGet(key)).Commit()
	if IsPermissionDenied(err) {
		return c.awaitClusterSecret(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("controlplane: cluster secret: %w", err)
	}
	if resp.Succeeded {
		return hex.EncodeToString(b[:]), nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return "", fmt.Errorf("controlplane: cluster secret vanished")
	}
	return string(kvs[0].Value), nil
}

// awaitClusterSecret reads the secret for a node whose etcd user may not
// create it: the control plane's detector leader does that when it is
// elected (access.go), so this waits for it, as long as ctx allows.
func (c *Client) awaitClusterSecret(ctx context.Context) (string, error) {
	for logged := false; ; {
		rctx, cancel := c.withTimeout(ctx)
		resp, err := c.etcd.Get(rctx, c.key("cluster-secret"))
		cancel()
		if err == nil && len(resp.Kvs) > 0 {
			return string(resp.Kvs[0].Value), nil
		}
		if err == nil && !logged {
			c.logger.Info("waiting for the control plane's detector leader to create the cluster secret")
			logged = true
		}
		retry.Sleep(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return "", fmt.Errorf("controlplane: cluster secret not created (is the control plane's detector running?): %w", ctx.Err())
		}
	}
}
