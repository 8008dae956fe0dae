// Package httpbody reads request bodies and writes JSON replies for the
// data node's handlers: object and JSON bodies held against the node's
// body budget (Config.MaxBodyMemory), streaming JSON decoders that stop at
// an item limit before the rest of a body is read, and the classification
// of a failed read (a client too slow: 408; anything else: 400).
//
// # Caveats
//
// A fasthttp handler must not keep the reader Reader returns, nor the
// bytes of a body it did not copy, past its return: fasthttp recycles
// the RequestCtx.
package httpbody

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/budget"
)

// MaxJSON bounds a JSON request body: an OID list of
// api.MaxBatchObjects (10,000 OIDs of 64 hex characters, about 0.7 MB) or
// a ref transaction of api.MaxRefUpdates (1,000 updates with names of up
// to 1 KiB, about 1.2 MB) fits with room to spare. A longer declared body
// is refused 413 before a byte of it is read.
const MaxJSON = 4 << 20

// A JSON body is held against the node's body budget (Config.MaxBodyMemory)
// like an object body, and decoded as a stream that stops at the item
// limit: a body of "{}," items would otherwise become tens of millions of
// structs, about 1-2 GB, before any count was checked.

// JSON reserves the memory of ctx's JSON body in b (its declared length,
// or MaxJSON when it is chunked) and returns a reader that fails with
// api.ErrTooLarge past MaxJSON, and the function that gives the memory
// back.
func JSON(ctx *fasthttp.RequestCtx, b *budget.Budget) (io.Reader, func(), error) {
	size := int64(ctx.Request.Header.ContentLength())
	if size > MaxJSON {
		return nil, nil, fmt.Errorf("%w: a JSON body of %d bytes, at most %d", api.ErrTooLarge, size, MaxJSON)
	}
	if size < 0 {
		size = MaxJSON
	}
	if err := b.Reserve(size); err != nil {
		return nil, nil, err
	}
	return &cappedReader{r: Reader(ctx), left: MaxJSON}, func() { b.Release(size) }, nil
}

// cappedReader reads at most left bytes and fails with api.ErrTooLarge on
// the next.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if k, _ := c.r.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("%w: a JSON body over %d bytes", api.ErrTooLarge, MaxJSON)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	k, err := c.r.Read(p)
	c.left -= int64(k)
	return k, err
}

// RefTxn reads ctx's ref transaction body whole (a node that is
// not the partition's primary forwards it as it came), held against the
// body budget until release is called, decoding it as it arrives so that
// the api.MaxRefUpdates+1st update stops the read (413).
func RefTxn(ctx *fasthttp.RequestCtx, b *budget.Budget) (body []byte, release func(), err error) {
	r, release, err := JSON(ctx, b)
	if err != nil {
		return nil, func() {}, err
	}
	var buf bytes.Buffer
	if _, err := decodeRefTxnFrom(io.TeeReader(r, &buf)); err != nil {
		release()
		return nil, func() {}, err
	}
	return buf.Bytes(), release, nil
}

// OIDList decodes ctx's {"oids":[...]} body, stopping at the
// api.MaxBatchObjects+1st OID (413).
func OIDList(ctx *fasthttp.RequestCtx, b *budget.Budget) (api.OIDList, error) {
	r, release, err := JSON(ctx, b)
	if err != nil {
		return api.OIDList{}, err
	}
	defer release()
	var list api.OIDList
	err = decodeArray(r, "oids", api.MaxBatchObjects, func(dec *json.Decoder) error {
		var s string
		err := dec.Decode(&s)
		list.OIDs = append(list.OIDs, s)
		return err
	})
	return list, jsonError(err, `{"oids":[...]}`)
}

// OIDLines decodes ctx's text body of OIDs, one per line (the compact form
// of an OID list between nodes), held against the body budget like a JSON
// body and stopping at the api.MaxBatchObjects+1st OID (413).
func OIDLines(ctx *fasthttp.RequestCtx, b *budget.Budget) ([]api.OID, error) {
	r, release, err := JSON(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	sc := bufio.NewScanner(r)
	var oids []api.OID
	for sc.Scan() {
		if len(oids) == api.MaxBatchObjects {
			return nil, fmt.Errorf("%w: more than %d OIDs", api.ErrTooLarge, api.MaxBatchObjects)
		}
		oid, err := api.ParseOID(string(sc.Bytes()))
		if err != nil {
			return nil, fmt.Errorf("oid %d: %w", len(oids), err)
		}
		oids = append(oids, oid)
	}
	if err := sc.Err(); err != nil {
		return nil, jsonError(err, "one OID per line")
	}
	return oids, nil
}

// DecodeRefTxn decodes a ref transaction, stopping at the
// api.MaxRefUpdates+1st update (413).
func DecodeRefTxn(body []byte) (api.RefTxn, error) { return decodeRefTxnFrom(bytes.NewReader(body)) }

func decodeRefTxnFrom(r io.Reader) (api.RefTxn, error) {
	var t api.RefTxn
	err := decodeArray(r, "updates", api.MaxRefUpdates, func(dec *json.Decoder) error {
		var u api.RefUpdate
		err := dec.Decode(&u)
		t.Updates = append(t.Updates, u)
		return err
	})
	return t, jsonError(err, `{"updates":[{"name","old","new"}...]}`)
}

// jsonError passes a sentinel error (too large, busy, timeout) on and
// makes anything else a 400 that names the expected shape.
func jsonError(err error, shape string) error {
	var remote *api.RemoteError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, api.ErrTooLarge), errors.Is(err, api.ErrBusy), errors.As(err, &remote):
		return err
	case IsTimeout(err):
		return ReadError(err)
	case shape == "":
		return fmt.Errorf("%w: reading body: %v", api.ErrBadRequest, err)
	}
	return fmt.Errorf("%w: body must be %s: %v", api.ErrBadRequest, shape, err)
}

// decodeArray decodes a JSON object from r, calling item for each element
// of the array under key (null is an empty array) and skipping other
// fields; more than max elements is api.ErrTooLarge, found at element
// max+1, before the rest of the body is read. Only white space may follow
// the object.
func decodeArray(r io.Reader, key string, max int, item func(*json.Decoder) error) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	count := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		if name, _ := k.(string); !strings.EqualFold(name, key) { // as encoding/json matches field names
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := decodeElements(dec, key, max, &count, item); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if tok, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more after the JSON object: %v %v", tok, err)
	}
	return nil
}

// decodeElements decodes the array (or null) that comes next in dec.
func decodeElements(dec *json.Decoder, key string, max int, count *int, item func(*json.Decoder) error) error {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return err
	case tok == nil:
		return nil
	case tok != json.Delim('['):
		return fmt.Errorf("%q is not an array", key)
	}
	for ; dec.More(); *count++ {
		if *count == max {
			return fmt.Errorf("%w: more than %d items in %q", api.ErrTooLarge, max, key)
		}
		if err := item(dec); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// expectDelim reads the next token and fails unless it is d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}

// Reader is ctx's request body: its stream when the server streams bodies,
// else the bytes already read.
func Reader(ctx *fasthttp.RequestCtx) io.Reader {
	if r := ctx.RequestBodyStream(); r != nil {
		return r
	}
	return bytes.NewReader(ctx.PostBody())
}

// ReadLimited reads r whole, failing with api.ErrTooLarge past max bytes.
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, ReadError(err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: body over %d bytes", api.ErrTooLarge, max)
	}
	return b, nil
}

// DecodeJSON reads ctx's body whole (at most max bytes) and decodes it
// into v; a body that is not v's JSON is a 400.
func DecodeJSON(ctx *fasthttp.RequestCtx, max int64, v any) error {
	b, err := ReadLimited(Reader(ctx), max)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: body: %v", api.ErrBadRequest, err)
	}
	return nil
}

// ReadError classifies a failed body read: a deadline that passed is
// the client's slowness (408), anything else a bad request (400).
func ReadError(err error) error {
	if IsTimeout(err) {
		return fmt.Errorf("%w: reading body: %v", api.ErrRequestTimeout, err)
	}
	return fmt.Errorf("%w: reading body: %v", api.ErrBadRequest, err)
}

// IsTimeout reports whether err is a read deadline passing: a client too
// slow with its header or body.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// WriteJSON answers with status and v as indented JSON, for people who
// read answers with curl.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeJSONBody(ctx, status, body)
}

// WriteCompactJSON answers with status and v as JSON on one line, for
// answers only other nodes read (a replica batch's results): indenting
// costs a second pass over the bytes on the hottest path of a PUT.
func WriteCompactJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeJSONBody(ctx, status, body)
}

func writeJSONBody(ctx *fasthttp.RequestCtx, status int, body []byte) error {
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(append(body, '\n'))
	return nil
}
