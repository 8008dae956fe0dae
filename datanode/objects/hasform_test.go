package objects

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/ring"
)

// randomReply is a :has reply of k answers, each a copy, a tombstone or
// nothing, with random stamps.
func randomReply(rng *rand.Rand, k int) indexReply {
	rep := indexReply{Present: make([]bool, k), Deleted: make([]bool, k), Stamps: make([]api.Stamp, k)}
	for i := range k {
		switch rng.IntN(3) {
		case 0:
			rep.Present[i], rep.Stamps[i] = true, api.Stamp(rng.Uint64())
		case 1:
			rep.Deleted[i], rep.Stamps[i] = true, api.Stamp(rng.Uint64())
		}
	}
	return rep
}

// The text form of a :has reply gives back every answer as it was sent,
// and a reply with a line too few, a line too many or a line that is not
// an answer is refused rather than read as "none".
func TestHasLinesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		k := rng.IntN(40)
		want := randomReply(rng, k)
		body := appendIndexLines(nil, want)
		got, err := parseIndexLines(body, k)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: %q read back as %+v, %v; want %+v", round, body, got, err, want)
		}
		if k == 0 {
			continue
		}
		if _, err := parseIndexLines(body, k+1); err == nil {
			t.Fatalf("round %d: a reply of %d lines read as %d answers", round, k, k+1)
		}
		if _, err := parseIndexLines(body, k-1); err == nil {
			t.Fatalf("round %d: a reply of %d lines read as %d answers", round, k, k-1)
		}
	}
	for _, bad := range []string{"copy\n", "copy x\n", "present 1\n", "none", "tombstone -1\n", "\n"} {
		if rep, err := parseIndexLines([]byte(bad), 1); err == nil {
			t.Fatalf("the reply %q was read as %+v; want an error", bad, rep)
		}
	}
}

// A peer that predates the text form answers it 400, as its JSON decoder
// fails on the body; indexGroup then asks again in JSON and gets every
// answer right. The peer here is such a node's :has handler on loopback.
func TestHasFallsBackToJSONForAnOlderPeer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	oids := make([]api.OID, 50)
	for i := range oids {
		oids[i], _ = api.Digest(api.SHA256, []byte(fmt.Sprint("object ", i)))
	}
	answers := randomReply(rng, len(oids))
	answerOf := map[string]int{}
	for i, oid := range oids {
		answerOf[oid.String()] = i
	}
	var textCalls, jsonCalls atomic.Int32
	old := func(ctx *fasthttp.RequestCtx) { // the older node: JSON or 400
		var list api.OIDList
		if err := json.Unmarshal(ctx.PostBody(), &list); err != nil {
			textCalls.Add(1)
			status, body := api.EncodeError(fmt.Errorf("%w: body must be {\"oids\":[...]}: %v", api.ErrBadRequest, err))
			ctx.SetStatusCode(status)
			ctx.SetBody(body)
			return
		}
		jsonCalls.Add(1)
		var rep indexReply
		for _, s := range list.OIDs {
			i := answerOf[s]
			rep.Present = append(rep.Present, answers.Present[i])
			rep.Deleted = append(rep.Deleted, answers.Deleted[i])
			rep.Stamps = append(rep.Stamps, answers.Stamps[i])
		}
		body, _ := json.Marshal(rep)
		ctx.SetBody(body)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: old}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })

	n := New(Config{ID: "new", PeerTimeout: 5 * time.Second}, Deps{Logger: slog.New(slog.DiscardHandler), Life: context.Background(),
		Peers: peer.New(peer.Options{ID: "new", Generation: "g1", IdleTimeout: time.Minute, BreakerThreshold: 100, BreakerCooldown: time.Second})})
	idx := rng.Perm(len(oids))[:30]
	got, err := n.indexGroup(context.Background(), ring.Node{ID: "old", Addr: ln.Addr().String()}, oids, idx, 1)
	if err != nil {
		t.Fatalf("has against the older peer: %v", err)
	}
	for j, i := range idx {
		if got.Present[j] != answers.Present[i] || got.Deleted[j] != answers.Deleted[i] || got.Stamps[j] != answers.Stamps[i] {
			t.Fatalf("answer %d (object %d): present %v deleted %v stamp %d; want %v %v %d", j, i,
				got.Present[j], got.Deleted[j], got.Stamps[j], answers.Present[i], answers.Deleted[i], answers.Stamps[i])
		}
	}
	if textCalls.Load() != 1 || jsonCalls.Load() != 1 {
		t.Fatalf("the older peer got %d text and %d JSON requests; want one of each", textCalls.Load(), jsonCalls.Load())
	}
}
