package requestid

import (
	"context"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestIncomingKeepsAPlainIDAndReplacesAnyOther(t *testing.T) {
	f := func(sent string, keep bool) {
		t.Helper()
		var ctx fasthttp.RequestCtx
		if sent != "" {
			ctx.Request.Header.Set(Header, sent)
		}
		got := Incoming(&ctx)
		if keep && got != sent {
			t.Fatalf("Incoming(%q) = %q; want it kept", sent, got)
		}
		if !keep && (got == sent || len(got) != 16 || !plain([]byte(got))) {
			t.Fatalf("Incoming(%q) = %q; want a new 16-hex-digit ID", sent, got)
		}
	}
	f("trace-me-42", true)
	f("a.b_c-D9", true)
	f(strings.Repeat("x", maxLen), true)
	f("", false)
	f(strings.Repeat("x", maxLen+1), false)
	f("has space", false)
	f(`quote"d`, false)
}

func TestTheContextCarriesTheID(t *testing.T) {
	if got := From(context.Background()); got != "" {
		t.Fatalf("From(background) = %q; want empty", got)
	}
	if got := From(With(context.Background(), "read-repair")); got != "read-repair" {
		t.Fatalf("From(With(read-repair)) = %q; want read-repair", got)
	}
}

func TestTheRequestKeepsTheID(t *testing.T) {
	var ctx fasthttp.RequestCtx
	if got := Of(&ctx); got != "" {
		t.Fatalf("Of(a fresh request) = %q; want empty", got)
	}
	Set(&ctx, "trace-me-42")
	if got := Of(&ctx); got != "trace-me-42" {
		t.Fatalf("Of after Set(trace-me-42) = %q; want trace-me-42", got)
	}
}
