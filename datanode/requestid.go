package datanode

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/valyala/fasthttp"
)

// HeaderRequestID carries a request's ID from the client (optional) to the
// coordinator and from the coordinator to every replica it calls, and back
// in every reply, so one request can be followed through the logs of every
// node it touched.
const HeaderRequestID = "X-Request-ID"

type requestIDKey struct{}

// withRequestID returns ctx carrying id.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestID is the ID ctx carries, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// incomingRequestID takes the caller's X-Request-ID if it is short and
// plain (letters, digits, - _ .), or makes a new random one.
func incomingRequestID(ctx *fasthttp.RequestCtx) string {
	id := ctx.Request.Header.Peek(HeaderRequestID)
	if len(id) > 0 && len(id) <= 64 && plainID(id) {
		return string(id)
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plainID(id []byte) bool {
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
