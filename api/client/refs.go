package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stratum-store/stratum/api"
)

// ConflictError is a transaction refused with 409 ref_conflict; Refs holds
// the current values of the refs whose old value did not match.
type ConflictError struct {
	Message string
	Refs    []api.Ref
}

func (e *ConflictError) Error() string { return "ref_conflict: " + e.Message }

// Unwrap makes errors.Is(err, api.ErrRefConflict) true.
func (e *ConflictError) Unwrap() error { return api.ErrRefConflict }

// refRetries bounds how often a ref request refused with not_primary or
// no_partitions (nothing was applied) is sent again, refRetryWait apart.
const (
	refRetries   = 10
	refRetryWait = 300 * time.Millisecond
)

// RefTxn applies a transaction to repo's refs: all updates or none. With
// requireObjects every new OID must be stored at quorum (422 otherwise).
func (c *Client) RefTxn(ctx context.Context, repo string, t api.RefTxn, requireObjects bool) (api.RefTxnResult, error) {
	body, err := json.Marshal(t)
	if err != nil {
		return api.RefTxnResult{}, err
	}
	u := c.base + refsPath(repo, "")
	if !requireObjects {
		u += "?require_objects=false"
	}
	var res api.RefTxnResult
	err = c.refRetry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		return c.doRefTxn(req, &res)
	})
	return res, err
}

// doRefTxn is doJSON that also decodes a 409's current values.
func (c *Client) doRefTxn(req *http.Request, res *api.RefTxnResult) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{fmt.Errorf("client: POST %s: %w", req.URL.Redacted(), err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &transportError{err}
	}
	if resp.StatusCode == http.StatusConflict {
		var rc api.RefConflict
		if json.Unmarshal(body, &rc) == nil && rc.Error.Code == "ref_conflict" {
			*res = rc.RefTxnResult
			return &ConflictError{Message: rc.Error.Message, Refs: rc.Refs}
		}
	}
	if resp.StatusCode >= 300 {
		return api.DecodeError(resp.StatusCode, body)
	}
	return json.Unmarshal(body, res)
}

// GetRef reads one ref; a missing ref is an error wrapping api.ErrNotFound.
func (c *Client) GetRef(ctx context.Context, repo, name string) (string, error) {
	var ref api.Ref
	err := c.refRetry(ctx, func() error { return c.getJSON(ctx, refsPath(repo, name), &ref) })
	return ref.OID, err
}

// ListRefs returns one page of repo's refs whose names start with prefix,
// after the name after; limit 0 means the server's maximum.
func (c *Client) ListRefs(ctx context.Context, repo, prefix, after string, limit int) (api.RefList, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	p := refsPath(repo, "")
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var list api.RefList
	err := c.refRetry(ctx, func() error { return c.getJSON(ctx, p, &list) })
	return list, err
}

// Partitions returns the endpoint node's view of the partitions.
func (c *Client) Partitions(ctx context.Context) (api.PartitionReport, error) {
	var rep api.PartitionReport
	err := c.getJSON(ctx, api.PathPartitions, &rep)
	return rep, err
}

// refRetry runs call again while the answer is one that applied nothing
// and may pass soon: not_primary (a failover) or no_partitions (a new
// cluster).
func (c *Client) refRetry(ctx context.Context, call func() error) error {
	var err error
	for attempt := 0; attempt < refRetries; attempt++ {
		err = call()
		if !errors.Is(err, api.ErrNotPrimary) && !errors.Is(err, api.ErrNoPartitions) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(refRetryWait):
		}
	}
	return err
}

// refsPath builds /v1/repos/{repo}/refs[/{rest of the ref name}], escaping
// each segment.
func refsPath(repo, name string) string {
	var b strings.Builder
	b.WriteString(api.PathRepos)
	for _, seg := range strings.Split(repo, "/") {
		b.WriteString(url.PathEscape(seg) + "/")
	}
	b.WriteString("refs")
	if rest, ok := strings.CutPrefix(name, "refs/"); ok {
		for _, seg := range strings.Split(rest, "/") {
			b.WriteString("/" + url.PathEscape(seg))
		}
	}
	return b.String()
}

// PartitionPlan returns the planner round that would run now.
func (c *Client) PartitionPlan(ctx context.Context) ([]api.PartitionAction, error) {
	var doc struct {
		Actions []api.PartitionAction `json:"actions"`
	}
	err := c.getJSON(ctx, api.PathPartitionPlan, &doc)
	return doc.Actions, err
}
