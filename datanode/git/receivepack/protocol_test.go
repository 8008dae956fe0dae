package receivepack

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// TestAdvertise checks the advertisement byte for byte: an empty repository
// shows capabilities^{} with the zero ID; otherwise the first ref carries
// the capabilities.
func TestAdvertise(t *testing.T) {
	caps := "report-status delete-refs ofs-delta side-band-64k quiet atomic push-options object-format=sha1 agent=" + Agent
	mem := backend.NewMemory()
	f := func(want ...string) {
		t.Helper()
		var b bytes.Buffer
		if err := Advertise(context.Background(), &b, mem, testRepo); err != nil {
			t.Fatal(err)
		}
		if got := pktLines(t, b.Bytes(), false); !slices.Equal(got, want) {
			t.Fatalf("got %q; want %q", got, want)
		}
	}
	f(api.ZeroOID+" capabilities^{}\x00"+caps, "0000")
	_, _, commit := smallHistory(t)
	blob, tree, _ := smallHistory(t)
	for _, o := range []obj{blob, tree, commit} {
		mem.Put(context.Background(), []backend.Object{{OID: api.MustParseOID(id(t, o)), Data: object.Canonical(o.t, o.body)}})
	}
	c := id(t, commit)
	mem.Update(context.Background(), testRepo, []backend.Update{
		{Name: "refs/heads/main", Old: api.ZeroOID, New: c}, {Name: "refs/tags/v1", Old: api.ZeroOID, New: c}})
	f(c+" refs/heads/main\x00"+caps, c+" refs/tags/v1", "0000")
	if err := Advertise(context.Background(), io.Discard, mem, "../etc"); err == nil {
		t.Fatal("Advertise accepted the repository name ../etc")
	}
}

// TestSideband asks for side-band-64k: the report comes in band 1 and the
// progress notes in band 2, which quiet silences.
func TestSideband(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	p := rawPack(t, blob, tree, commit)
	for _, quiet := range []bool{false, true} {
		s := newServer(t)
		caps := "report-status side-band-64k agent=test"
		if quiet {
			caps += " quiet"
		}
		resp := s.post(t, request0(create(id(t, commit), caps), p))
		var progress, data bytes.Buffer
		sr := pktline.NewSidebandReader(pktline.NewReader(bytes.NewReader(resp)), &progress)
		if _, err := io.Copy(&data, sr); err != nil {
			t.Fatalf("side-band: %v in %q", err, resp)
		}
		if got := strings.Join(pktLines(t, data.Bytes(), false), "|"); got != "unpack ok|ok refs/heads/x|0000" {
			t.Fatalf("band 1: %q; want the report", got)
		}
		if got := progress.String(); quiet != (got == "") || !quiet && !strings.Contains(got, "received 3 objects") {
			t.Fatalf("quiet %v: band 2 %q; want progress only without quiet", quiet, got)
		}
	}
}

// TestRequests covers the command list: a push without report-status gets
// no report, git's probe (a lone flush) nothing at all, a bad name or a
// ref named twice refuses the whole push, and malformed or unsupported
// requests an ERR packet (band 3 with side-band-64k).
func TestRequests(t *testing.T) {
	blob, tree, commit := smallHistory(t)
	p, c := rawPack(t, blob, tree, commit), id(t, commit)
	f := func(body []byte, want string) *server {
		t.Helper()
		s := newServer(t)
		resp := s.post(t, body)
		var got string
		if bytes.HasPrefix(resp, []byte("0000")) || len(resp) == 0 {
			got = string(resp)
		} else if resp[4] == pktline.BandError {
			got = "band3 " + string(resp[5:])
		} else {
			_, _, err := pktline.NewReader(bytes.NewReader(resp)).ReadPacket()
			if err == nil {
				got = strings.Join(pktLines(t, resp, false), "|")
			} else {
				got = err.Error()
			}
		}
		if !strings.Contains(got, want) || want == "" && got != "" {
			t.Fatalf("got %q; want %q", got, want)
		}
		return s
	}
	if s := f(request0(create(c, ""), p), ""); s.refs() == "" {
		t.Fatal("a push without report-status did not update its ref")
	}
	f([]byte("0000"), "")
	f(request0(api.ZeroOID+" "+c+" refs/heads/a..b\x00report-status", api.ZeroOID+" "+c+" refs/heads/ok", p),
		"unpack ok|ng refs/heads/a..b funny refname|ng refs/heads/ok atomic push failure|0000")
	f(request0(create(c, "report-status"), api.ZeroOID+" "+c+" refs/heads/x", p),
		"ng refs/heads/x ref named twice in one push")
	f(request0("garbage\x00report-status", p), "remote error: receivepack: protocol error: command 1")
	f(request0("shallow "+c, p), "not supported: shallow push")
	f(request0(create(c, "report-status object-format=sha256"), p), "not supported: object-format=sha256")
	f(request0(create(c, "report-status side-band-64k"), "bad", p), "band3 receivepack: protocol error: command 2")
	f([]byte("00"), "remote error: receivepack: protocol error: command list")
}

// TestPushOptions: git push -o reaches Result.PushOptions.
func TestPushOptions(t *testing.T) {
	s := newServer(t)
	r := gittest.New(t, false)
	history(t, r, "", 3, 7)
	if out, ok := gitPush(t, r, "-o", "ci.skip", "-o", "merge_request.create", s.url(), "main"); !ok {
		t.Fatalf("push failed:\n%s", out)
	}
	if got := s.last().PushOptions; !slices.Equal(got, []string{"ci.skip", "merge_request.create"}) {
		t.Fatalf("push options %q; want ci.skip, merge_request.create", got)
	}
}

// TestLimitsValidate: each bad field is named.
func TestLimitsValidate(t *testing.T) {
	for _, c := range []struct {
		l    Limits
		want string
	}{
		{Limits{MaxPackBytes: -1}, "MaxPackBytes"},
		{Limits{MaxCommands: api.MaxRefUpdates + 1}, "MaxCommands"},
		{Limits{BatchObjects: -1}, "BatchObjects"},
		{Limits{CacheBytes: -1}, "CacheBytes"},
	} {
		if err := c.l.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v; want an error naming %s", c.l, err, c.want)
		}
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits: %v", err)
	}
	if _, err := Serve(context.Background(), strings.NewReader("0000"), io.Discard, backend.NewMemory(), testRepo, Limits{MaxObjectSize: -1}); err == nil {
		t.Error("Serve accepted Limits with MaxObjectSize -1")
	}
}
