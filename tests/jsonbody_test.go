package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
)

// repeatReader yields head, then item count times, then tail, without
// allocating per read.
type repeatReader struct {
	parts []string
	count int
	cur   string
}

func newRepeatReader(head, item string, count int, tail string) *repeatReader {
	return &repeatReader{parts: []string{head, item, tail}, count: count}
}

func (r *repeatReader) Read(p []byte) (int, error) {
	k := 0
	for k < len(p) {
		if r.cur == "" && !r.next() {
			break
		}
		c := copy(p[k:], r.cur)
		r.cur = r.cur[c:]
		k += c
	}
	if k == 0 {
		return 0, io.EOF
	}
	return k, nil
}

// next makes the next part current; false at the end.
func (r *repeatReader) next() bool {
	switch {
	case r.parts[0] != "":
		r.cur, r.parts[0] = r.parts[0], ""
	case r.count > 0:
		r.cur = r.parts[1]
		r.count--
	case r.parts[2] != "":
		r.cur, r.parts[2] = r.parts[2], ""
	default:
		return false
	}
	return true
}

// sendPrefixOnly sends a JSON POST's header, declaring a body of size
// bytes or (size < 0) a chunked one, and the first 64 KiB of the body
// (fasthttp reads 8 KiB before it calls the handler), then waits for the
// answer: a node that judges the declared size or stops at the item limit
// answers at once; one that reads the body first waits for the rest until
// the read deadline.
func sendPrefixOnly(addr, path string, body *repeatReader, size int64) (int, string) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", path, addr)
	if size < 0 {
		fmt.Fprintf(conn, "Transfer-Encoding: chunked\r\n\r\n%x\r\n", 64<<10)
	} else {
		fmt.Fprintf(conn, "Content-Length: %d\r\n\r\n", size)
	}
	io.CopyN(conn, body, 64<<10)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "no answer with most of the body unsent: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, errorCode(b)
}

// JSON bodies are held against the body budget and decoded as a stream
// that stops at the item limit (issue 21.7): four concurrent 8 MiB bodies
// of tiny items (OID lists of "" and ref transactions of {}) are each
// refused 413 once the first 64 KiB are sent: chunked ones at the item
// limit, ones whose length is declared on the declaration; the test
// allocates far less than decoding them would (millions of strings and
// structs). The body budget is whole again, and the nodes serve bodies at
// the documented limits.
func TestJSONBodiesBoundedBeforeDecoding(t *testing.T) {
	c := refsClusterWith(t, 3, 4, nil, nil)
	const items = 8 << 20 / 3 // 8 MiB of 3-byte items
	oids := func() *repeatReader { return newRepeatReader(`{"oids":[`, `"",`, items, `""]}`) }
	updates := func() *repeatReader { return newRepeatReader(`{"updates":[`, `{},`, items, `{}]}`) }
	size := int64(len(`{"oids":[`) + 3*items + len(`""]}`))
	sizeRefs := int64(len(`{"updates":[`) + 3*items + len(`{}]}`))
	cases := []struct {
		what string
		send func() (int, string)
	}{
		{"objects:has, chunked", func() (int, string) { return sendPrefixOnly(c.Nodes[0].Addr, api.PathBatchHas, oids(), -1) }},
		{"objects:get, length declared", func() (int, string) { return sendPrefixOnly(c.Nodes[1].Addr, api.PathBatchGet, oids(), size) }},
		{"ref transaction, chunked", func() (int, string) {
			return sendPrefixOnly(c.Nodes[0].Addr, api.PathRepos+"big/one/refs?require_objects=false", updates(), -1)
		}},
		{"ref transaction, length declared", func() (int, string) {
			return sendPrefixOnly(c.Nodes[2].Addr, api.PathRepos+"big/two/refs?require_objects=false", updates(), sizeRefs)
		}},
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	got := make([]string, len(cases))
	for i, tc := range cases {
		wg.Go(func() {
			status, code := tc.send()
			got[i] = fmt.Sprintf("%d %s", status, code)
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	for i, tc := range cases {
		if got[i] != "413 too_large" {
			t.Errorf("%s: got %s; want 413 too_large", tc.what, got[i])
		}
	}
	// Decoding them would allocate hundreds of MB (2.8 million strings or
	// structs per body); refusing them, little beyond the nodes' own work.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 128<<20 {
		t.Errorf("allocated %d MiB while four 8 MiB JSON bodies were refused; want under 128 MiB (they were decoded)", alloc>>20)
	}
	for i := range c.Nodes {
		Eventually(t, 10*time.Second, fmt.Sprintf("n%d's body budget is whole again", i+1), func() bool {
			return metric(t, c, i, `stratum_body_memory_bytes`) == 0
		})
	}
	// The limits themselves are served: a full OID list and a full transaction.
	full := make([]api.OID, api.MaxBatchObjects)
	for i := range full {
		full[i] = api.MustParseOID(sha256Hex(fmt.Sprint("absent ", i)))
	}
	if reply, err := c.Client(0).HasMany(ctxT(t), full, api.Quorum); err != nil || len(reply.Present)+len(reply.Missing)+len(reply.Unknown) != len(full) {
		t.Fatalf("HasMany of %d OIDs: %d present, %d missing, %d unknown, %v; want an answer for each, no error",
			len(full), len(reply.Present), len(reply.Missing), len(reply.Unknown), err)
	}
	// The largest transaction is read whole and judged on its names: its
	// last name is invalid, so nothing is applied.
	txn := api.RefTxn{Updates: make([]api.RefUpdate, api.MaxRefUpdates)}
	for i := range txn.Updates {
		name := fmt.Sprintf("refs/heads/%04d-%s", i, strings.Repeat("n", 1000))
		txn.Updates[i] = api.RefUpdate{Name: name, Old: api.ZeroOID, New: strings.Repeat("1", 40)}
	}
	txn.Updates[len(txn.Updates)-1].Name = "refs/heads/bad..name"
	if _, err := c.Client(1).RefTxn(ctxT(t), "big/full", txn, false); !errors.Is(err, api.ErrInvalidRefName) {
		t.Fatalf("a transaction of %d updates with 1 KiB names, the last invalid: %v; want invalid_ref_name (read whole, not too_large)", len(txn.Updates), err)
	}
}
