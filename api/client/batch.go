package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/stratum-store/stratum/api"
)

// Object is an object's bytes with its OID.
type Object struct {
	OID  api.OID
	Data []byte
}

// PutBatch uploads many small objects in one request (POST /v1/objects:put).
// Each object is verified and replicated on its own; the reply says, per
// object, whether it reached the consistency level.
func (c *Client) PutBatch(ctx context.Context, objs []Object, level api.Consistency) (api.BatchPutReply, error) {
	var body bytes.Buffer
	for _, o := range objs {
		api.WriteFrame(&body, o.OID, o.Data)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+api.PathBatchPut+"?consistency="+string(level), &body)
	if err != nil {
		return api.BatchPutReply{}, err
	}
	var reply api.BatchPutReply
	err = c.doJSON(req, &reply)
	return reply, err
}

// HasMany asks which OIDs exist (POST /v1/objects:has).
func (c *Client) HasMany(ctx context.Context, oids []api.OID, level api.Consistency) (api.HasReply, error) {
	req, err := c.oidListRequest(ctx, api.PathBatchHas, oids, level)
	if err != nil {
		return api.HasReply{}, err
	}
	var reply api.HasReply
	err = c.doJSON(req, &reply)
	return reply, err
}

// GetMany fetches many objects in one streamed response (POST
// /v1/objects:get) and calls fn for each, in request order, with its
// verified bytes or the error that kept it from being returned.
func (c *Client) GetMany(ctx context.Context, oids []api.OID, level api.Consistency, fn func(oid api.OID, data []byte, err error)) error {
	req, err := c.oidListRequest(ctx, api.PathBatchGet, oids, level)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for i := 0; ; i++ {
		oid, data, code, err := api.ReadFrame(r, api.MaxBatchBytes)
		if errors.Is(err, io.EOF) {
			if i != len(oids) {
				return errors.New("client: batch get ended early")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case code != "":
			fn(oid, nil, &api.RemoteError{Code: code, Message: code})
		default:
			fn(oid, data, api.Verify(oid, data))
		}
	}
}

func (c *Client) oidListRequest(ctx context.Context, path string, oids []api.OID, level api.Consistency) (*http.Request, error) {
	list := api.OIDList{OIDs: make([]string, len(oids))}
	for i, o := range oids {
		list.OIDs[i] = o.String()
	}
	body, _ := json.Marshal(list)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path+"?consistency="+string(level), bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json") // the node answers 415 to anything else
	}
	return req, err
}
