// Package requestid carries one request's ID from the client through the
// coordinator to every replica it calls, and back in every reply, so one
// request can be followed through the logs of every node it touched.
//
// The edge takes the client's X-Request-ID when it is short and plain, or
// makes one (Incoming); the ID then rides in the context (With, From), and
// the node-to-node client copies From(ctx) into each outgoing call's
// Header. Background work (read repair, handoff) names itself with a fixed
// ID such as "read-repair", so its calls are not mistaken for a client's.
//
// # Caveats
//
// An ID is for logs only: it is neither secret nor unique across clients
// that choose their own, so never key state or authorisation on it.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/valyala/fasthttp"
)

// Header is the HTTP header that carries the ID, on requests and replies.
const Header = "X-Request-ID"

// maxLen bounds a client's ID, so a log line stays a line.
const maxLen = 64

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From is the ID ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Incoming takes the caller's X-Request-ID if it is short and plain
// (letters, digits, - _ .), or makes a new random one: an ID goes into
// logs unescaped, so it must not carry spaces, quotes or newlines.
func Incoming(ctx *fasthttp.RequestCtx) string {
	id := ctx.Request.Header.Peek(Header)
	if len(id) > 0 && len(id) <= maxLen && plain(id) {
		return string(id)
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plain(id []byte) bool {
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Set keeps id on the fasthttp request for its handlers (Of).
func Set(ctx *fasthttp.RequestCtx, id string) { ctx.SetUserValue(key{}, id) }

// Of is the ID Set kept on the request, or "".
func Of(ctx *fasthttp.RequestCtx) string {
	id, _ := ctx.UserValue(key{}).(string)
	return id
}
