package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Endpoints of the etcd cluster ("http://127.0.0.1:2379"). Required.
	Endpoints []string
	// Prefix under which every stratum key lives; default "/stratum/".
	// Several clusters can share one etcd with different prefixes.
	Prefix string
	// DialTimeout bounds connecting to etcd; default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds each etcd call this client makes on its own
	// (the caller's ctx still applies); default 5s.
	RequestTimeout time.Duration
	// Logger; default discard.
	Logger *slog.Logger
	// TLS is required for https endpoints of a member with client
	// certificate auth: the cluster CA to trust and this process's
	// certificate (pki.ClientConfig).
	TLS *tls.Config
	// Username and Password are etcd credentials, needed once etcd
	// access control is on (EnableAccess): RootUser for the control plane
	// and tools, NodeUser(id) for a data node.
	Username, Password string
}

// DefaultClientConfig returns a configuration for the given endpoints.
func DefaultClientConfig(endpoints ...string) ClientConfig {
	return ClientConfig{
		Endpoints:      endpoints,
		Prefix:         "/stratum/",
		DialTimeout:    5 * time.Second,
		RequestTimeout: 5 * time.Second,
	}
}

// Validate checks the configuration; an error names the field and the rule.
func (c ClientConfig) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("controlplane: ClientConfig.Endpoints must list at least one etcd endpoint")
	case !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/"):
		return fmt.Errorf("controlplane: ClientConfig.Prefix must start and end with '/', got %q", c.Prefix)
	case c.DialTimeout <= 0:
		return errors.New("controlplane: ClientConfig.DialTimeout must be > 0")
	case c.RequestTimeout <= 0:
		return errors.New("controlplane: ClientConfig.RequestTimeout must be > 0")
	}
	return nil
}

// Client is the typed etcd client of the control plane. It is safe for
// concurrent use.
type Client struct {
	etcd   *clientv3.Client
	cfg    ClientConfig
	logger *slog.Logger
	bad    *badRecords // records skipped (records.go)
}

// Dial connects to etcd and checks that it answers within DialTimeout.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ec, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: dial etcd %v: %w", cfg.Endpoints, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{etcd: ec, cfg: cfg, logger: logger, bad: &badRecords{}}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := ec.Get(pctx, c.key("ring")); err != nil {
		ec.Close()
		return nil, fmt.Errorf("controlplane: etcd %v does not answer: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// Close closes the connection to etcd.
func (c *Client) Close() error { return c.etcd.Close() }

// Etcd exposes the raw etcd client for tools and tests.
func (c *Client) Etcd() *clientv3.Client { return c.etcd }

func (c *Client) key(parts ...string) string {
	return c.cfg.Prefix + strings.Join(parts, "/")
}

// withTimeout derives a context bounded by RequestTimeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}
