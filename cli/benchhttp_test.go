package cli

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// TestBenchHTTPChecksWhatItReads serves the bench's fasthttp client from a
// loopback server that answers right, with other bytes, and with an
// error: only the first passes, and the token and consistency reach the
// server.
func TestBenchHTTPChecksWhatItReads(t *testing.T) {
	good := []byte("the object's bytes")
	oid, _ := api.Digest(api.SHA256, good)
	var body []byte
	var status int
	var seen []string
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		seen = append(seen, string(ctx.Method())+" "+string(ctx.RequestURI())+" "+string(ctx.Request.Header.Peek(api.HeaderAuthorization)))
		ctx.SetStatusCode(status)
		ctx.SetBody(body)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	b, err := newBenchHTTP("http://"+ln.Addr().String(), "tok", nil, api.Quorum, 2)
	if err != nil {
		t.Fatal(err)
	}

	status, body = 201, []byte(`{}`)
	if err := b.put(oid, good); err != nil {
		t.Fatalf("put answered 201: %v", err)
	}
	status, body = 200, good
	if n, err := b.get(oid); err != nil || n != len(good) {
		t.Fatalf("get of the right bytes: %d, %v", n, err)
	}
	body = []byte("other bytes")
	if _, err := b.get(oid); err == nil {
		t.Fatal("get accepted bytes that do not hash to the OID")
	}
	status, body = 404, []byte(`{"error":{"code":"not_found","message":"no such object"}}`)
	if _, err := b.get(oid); err == nil || !strings.Contains(err.Error(), "no such object") {
		t.Fatalf("get of a 404: %v", err)
	}
	status, body = 503, []byte(`{"error":{"code":"quorum_not_reached","message":"1 of 2"}}`)
	if err := b.put(oid, good); err == nil {
		t.Fatal("put accepted a 503")
	}
	want := "PUT " + api.PathObjects + oid.String() + "?" + api.QueryConsistency + "=quorum Bearer tok"
	if seen[0] != want {
		t.Fatalf("first request %q; want %q", seen[0], want)
	}
	if _, err := newBenchHTTP("ftp://x", "", nil, api.Quorum, 1); err == nil {
		t.Fatal("an ftp endpoint was accepted")
	}
}
