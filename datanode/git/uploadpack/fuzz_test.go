package uploadpack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// FuzzServe feeds arbitrary request bodies to Serve, v0 and v2, over a
// small repository: it must answer or fail with an error, never panic or
// hang, and any error it returns for a request it could not parse wraps
// ErrProtocol.
func FuzzServe(f *testing.F) {
	src := gittest.New(f, true)
	generate(f, src, "main", "", 0, 6, 3)
	m := backend.NewMemory()
	load(f, m, "r", src)
	tip, old := src.Line(nil, "rev-parse", "main"), src.Line(nil, "rev-parse", "main~2")
	f.Add([]byte(pkts("want "+tip+" multi_ack_detailed side-band-64k ofs-delta include-tag", "deepen 2", "", "have "+old, "done")), false)
	f.Add([]byte(pkts("want "+tip+" side-band-64k", "shallow "+old, "deepen-since 1700000100", "", "have "+old, "")), false)
	f.Add([]byte(pkts("command=fetch", "object-format=sha1", "\x01", "want "+tip, "have "+old, "include-tag", "ofs-delta", "deepen-not refs/tags/v3", "filter blob:none", "done", "")), true)
	f.Add([]byte(pkts("command=ls-refs", "\x01", "peel", "symrefs", "ref-prefix refs/tags/", "")), true)
	f.Fuzz(func(t *testing.T, body []byte, v2 bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := Serve(ctx, bytes.NewReader(body), io.Discard, m, "r", v2)
		if ctx.Err() != nil {
			t.Fatalf("Serve did not finish in 10 s on %q", body)
		}
		if err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrNotOurRef) {
			t.Fatalf("Serve(%q): %v; want nil, ErrProtocol or ErrNotOurRef", body, err)
		}
	})
}
