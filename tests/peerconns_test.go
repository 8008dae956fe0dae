package tests

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// A replica's answer to a peer's HEAD names its Content-Length, so the
// peer's keep-alive connection survives it. Without one, the fasthttp
// client read the answer as a body that ends at close and dropped the
// connection: every presence check of a quorum GET dialled anew (found by
// a CPU profile on 2026-12-04, where dialling took a fifth of a GET run).
func TestPeerHeadKeepsTheConnection(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	data := randomBytes(7, 4096)
	rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.All)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	oid := api.MustParseOID(rec.OID)
	var dials atomic.Int64
	hc := &fasthttp.HostClient{Addr: c.Nodes[1].Addr, Dial: func(addr string) (net.Conn, error) {
		dials.Add(1)
		return net.Dial("tcp", addr)
	}}
	from := c.Nodes[0].Node
	for i := 0; i < 20; i++ {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.Header.SetMethod(fasthttp.MethodHead)
		req.SetRequestURI("http://" + c.Nodes[1].Addr + api.PathReplicas + oid.String())
		req.Header.Set(api.HeaderRingRevision, strconv.FormatInt(from.Ring().Revision(), 10))
		req.Header.Set(api.HeaderNode, from.ID())
		req.Header.Set(api.HeaderGeneration, from.Generation())
		if err := hc.Do(req, resp); err != nil {
			t.Fatalf("HEAD %d: %v", i, err)
		}
		if resp.StatusCode() != 200 || resp.Header.ContentLength() != len(data) || resp.ConnectionClose() {
			t.Fatalf("HEAD %d: status %d, Content-Length %d, connection close %v; want 200, %d, false",
				i, resp.StatusCode(), resp.Header.ContentLength(), resp.ConnectionClose(), len(data))
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("20 HEADs dialled %d connections; want 1 (the connection is kept)", n)
	}
}
