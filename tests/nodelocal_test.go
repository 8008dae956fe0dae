package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/stratum-store/stratum/api"
)

// Node-local reads: what one node's own store holds, asked through the
// node-to-node endpoints (docs/api.md, "Node-to-node") with the node's own
// identity, so no coordinator fans the request out to other replicas. The
// chaos checkers use them to count replicas and the crash loop to read the
// copies of the node it kills.

// peerHeaders returns the headers a replica call to n needs: its ring
// revision, and its own ID and current generation as the caller.
func (c *procCluster) peerHeaders(ctx context.Context, n *procNode) (http.Header, error) {
	doc, err := c.client(n).Ring(ctx)
	if err != nil {
		return nil, err
	}
	m, ok, err := c.CP.Member(ctx, n.ID)
	if err != nil || !ok {
		return nil, fmt.Errorf("member %s: found %v, %v", n.ID, ok, err)
	}
	h := http.Header{}
	h.Set(api.HeaderRingRevision, strconv.FormatInt(doc.Revision, 10))
	h.Set(api.HeaderNode, n.ID)
	h.Set(api.HeaderGeneration, m.Generation)
	return h, nil
}

// peerCall sends one replica call to n and returns the body of a 200 reply.
func (c *procCluster) peerCall(ctx context.Context, n *procNode, method, path string, body []byte) ([]byte, error) {
	h, err := c.peerHeaders(ctx, n)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, n.URL()+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = api.DecodeError(resp.StatusCode, out)
	}
	return out, err
}

func oidList(oids []api.OID) []byte {
	list := api.OIDList{OIDs: make([]string, len(oids))}
	for i, oid := range oids {
		list.OIDs[i] = oid.String()
	}
	b, _ := json.Marshal(list)
	return b
}

// localHas reports which of oids n's own store holds.
func (c *procCluster) localHas(ctx context.Context, n *procNode, oids []api.OID) ([]bool, error) {
	var has []bool
	for start := 0; start < len(oids); start += api.MaxBatchObjects {
		chunk := oids[start:min(len(oids), start+api.MaxBatchObjects)]
		body, err := c.peerCall(ctx, n, http.MethodPost, api.PathReplicaHas, oidList(chunk))
		if err != nil {
			return nil, err
		}
		var reply struct{ Present []bool }
		if err := json.Unmarshal(body, &reply); err != nil || len(reply.Present) != len(chunk) {
			return nil, fmt.Errorf("replica-has from %s: %d answers for %d OIDs (%v)", n.ID, len(reply.Present), len(chunk), err)
		}
		has = append(has, reply.Present...)
	}
	return has, nil
}

// localGetMany calls fn with n's own copy of each of oids (nil data and an
// error code when n has none), small ones in batches, large ones alone.
func (c *procCluster) localGetMany(ctx context.Context, n *procNode, oids []api.OID, fn func(api.OID, []byte, string)) error {
	for start := 0; start < len(oids); start += 1000 {
		body, err := c.peerCall(ctx, n, http.MethodPost, api.PathReplicaGet, oidList(oids[start:min(len(oids), start+1000)]))
		if err != nil {
			return err
		}
		r := bufio.NewReader(bytes.NewReader(body))
		for {
			oid, data, code, err := api.ReadFrame(r, api.MaxBatchBytes)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if code == "too_large" {
				data, err = c.peerCall(ctx, n, http.MethodGet, api.PathReplicas+oid.String()+"?inline_max="+strconv.Itoa(1<<40), nil)
				if err != nil {
					data, code = nil, err.Error()
				} else {
					code = ""
				}
			}
			fn(oid, data, code)
		}
	}
	return nil
}
