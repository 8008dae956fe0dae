package peer

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// serve answers every request on a loopback listener with h and returns
// its address.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return ln.Addr().String()
}

func options(fenced *string) Options {
	return Options{ID: "n1", Generation: "g1", Secret: "s", IdleTimeout: time.Second,
		BreakerThreshold: 2, BreakerCooldown: time.Minute, Retries: 1, RetryBackoff: time.Millisecond,
		Fence: func(why string) { *fenced = why }}
}

// A call carries the fencing token and the caller's identity, and its
// reply body reaches Read.
func TestCallSendsIdentityAndReadsTheReply(t *testing.T) {
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Request.Header
		ctx.SetBodyString(string(h.Peek(api.HeaderRingRevision)) + " " + string(h.Peek(api.HeaderNode)) + " " +
			string(h.Peek(api.HeaderGeneration)) + " " + string(h.Peek(HeaderClusterSecret)) + " " + string(ctx.PostBody()))
	})
	var fenced string
	c := New(options(&fenced))
	var got string
	err := c.Call(context.Background(), Call{Addr: addr, Method: "POST", Path: "/x", Rev: 7, Body: []int{1},
		Timeout: time.Second, Read: func(b []byte) error { got = string(b); return nil }})
	if want := "7 n1 g1 s [1]"; err != nil || got != want {
		t.Fatalf("Call: %q, %v; want %q, nil", got, err, want)
	}
}

// An error reply comes back as the sentinel it names; stale_generation
// fences the caller.
func TestErrorRepliesAreSentinels(t *testing.T) {
	f := func(sentinel error, wantFenced bool) {
		t.Helper()
		addr := serve(t, func(ctx *fasthttp.RequestCtx) {
			status, body := api.EncodeError(sentinel)
			ctx.SetStatusCode(status)
			ctx.SetBody(body)
		})
		var fenced string
		err := New(options(&fenced)).Call(context.Background(), Call{Addr: addr, Method: "GET", Path: "/x",
			Timeout: time.Second, Read: func([]byte) error { return nil }})
		if !errors.Is(err, sentinel) || (fenced != "") != wantFenced {
			t.Fatalf("Call: %v, fenced %q; want %v, fenced %t", err, fenced, sentinel, wantFenced)
		}
	}
	f(api.ErrNotFound, false)
	f(api.ErrStaleGeneration, true)
}

// Transport failures open the peer's breaker at the threshold; an open
// breaker refuses without calling.
func TestBreakerOpensOnTransportFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every call is a transport failure
	var fenced string
	c := New(options(&fenced))
	for i := 0; i < 2; i++ {
		if err := c.Call(context.Background(), Call{Addr: addr, Method: "GET", Path: "/x", Timeout: time.Second,
			Read: func([]byte) error { return nil }}); err == nil {
			t.Fatal("a call to a closed port succeeded")
		}
	}
	if !c.Open(addr) {
		t.Fatalf("breaker of %s not open after two failed calls: %+v", addr, c.States())
	}
	err = c.Call(context.Background(), Call{Addr: addr, Method: "GET", Path: "/x", Timeout: time.Second,
		Read: func([]byte) error { return nil }})
	if !errors.Is(err, api.ErrPeerUnavailable) {
		t.Fatalf("call through an open breaker: %v; want %v", err, api.ErrPeerUnavailable)
	}
	if c.Retain(map[string]bool{}) != 1 || len(c.States()) != 0 {
		t.Fatalf("Retain(nothing) left %+v", c.States())
	}
}
