package pack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// TestReadsUploadPackResponse drives stock git upload-pack with a request
// written by pktline, demultiplexes its side-band-64k response with
// pktline.SidebandReader and reads the pack in it: the three packages
// together speak git's fetch protocol (v0, stateless).
func TestReadsUploadPackResponse(t *testing.T) {
	r := gittest.New(t, true)
	fastImport(t, r, 60)
	head := r.Line(nil, "rev-parse", "main")
	var req bytes.Buffer
	w := pktline.NewWriter(&req)
	w.Writef("want %s side-band-64k ofs-delta agent=stratum-test\n", head)
	w.Flush()
	w.WriteString("done\n")
	out := r.Git(req.Bytes(), "upload-pack", "--stateless-rpc", ".")

	pr := pktline.NewReader(bytes.NewReader(out))
	k, p, err := pr.ReadPacket()
	if err != nil || k != pktline.Data || string(p) != "NAK\n" {
		t.Fatalf("first packet: got %v %q %v; want NAK", k, p, err)
	}
	var progress bytes.Buffer
	sb := pktline.NewSidebandReader(pr, &progress)
	var got []string
	res, err := Read(context.Background(), sb, Config{}, func(o Object) error {
		got = append(got, fmt.Sprintf("%s %s %d", o.ID, o.Type, len(o.Body)))
		return nil
	})
	if err != nil {
		t.Fatalf("Read of upload-pack's pack: %v (progress %q)", err, progress.String())
	}
	if rest, err := io.ReadAll(sb); err != nil || len(rest) != 0 {
		t.Fatalf("after the pack: got %q, %v; want a flush (EOF)", rest, err)
	}
	sort.Strings(got)
	want := lines(r.Git(r.Git(nil, "rev-list", "--objects", "--no-object-names", "main"), "cat-file", "--batch-check"))
	if d := diff(got, want); d != "" {
		t.Fatalf("objects differ from git rev-list --objects main: %s", d)
	}
	// upload-pack sends progress on band 2 unless asked for no-progress.
	if !strings.Contains(progress.String(), "objects") {
		t.Fatalf("band 2: got %q; want git's progress text", progress.String())
	}
	t.Logf("%d objects, %d deltas, %d bytes of progress", res.Objects, res.Deltas, progress.Len())
}
