package uploadpack

import (
	"bufio"
	"fmt"
	"io"

	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// output is where a pack goes: band 1 of a side band with progress on band
// 2 and errors on band 3, or the bare stream for a v0 client that did not
// ask for side-band-64k (then no progress and no error text).
type output struct {
	sb       *pktline.SidebandWriter // nil without side band
	data     *bufio.Writer           // pack bytes, in packets of the largest size
	progress bool
}

func newOutput(w io.Writer, sideband, progress bool) *output {
	if !sideband {
		return &output{data: bufio.NewWriterSize(w, 64<<10)}
	}
	sb := pktline.NewSidebandWriter(w)
	return &output{sb: sb, data: bufio.NewWriterSize(sb, pktline.MaxSidebandData), progress: progress}
}

func (o *output) progressf(format string, a ...any) {
	if o.sb != nil && o.progress {
		o.sb.Progress(fmt.Sprintf(format, a...))
	}
}

// fail sends err on band 3, where git prints it and stops.
func (o *output) fail(err error) {
	if o.sb != nil {
		o.data.Flush()
		o.sb.Error(errText(err) + "\n")
	}
}

// sendPack decides what to send (see objectWalk) and streams the pack.
func (f *fetch) sendPack(out *output) error {
	ow := newObjectWalk(f.o, func(n int) { out.progressf("Counting objects: %d\r", n) })
	ow.omitBlobs = f.req.filter == "blob:none"
	if err := f.walk(ow); err != nil {
		return err
	}
	out.progressf("Counting objects: %d, done.\n", len(ow.send))
	return f.writePack(out, ow.send)
}

func (f *fetch) walk(ow *objectWalk) error {
	if err := f.markHaves(ow); err != nil {
		return err
	}
	cw := newCommitWalk(f.o, f.plan.grafts)
	included, err := cw.run(f.wantCommits(), f.haveCommits())
	if err != nil {
		return err
	}
	if err := ow.commits(included, cw, f.haveCommits()); err != nil {
		return err
	}
	var trees []object.ID
	for _, id := range f.req.wants {
		p := f.wants[id]
		ow.tagChain(p)
		switch p.ttype {
		case object.Tree:
			trees = append(trees, p.target)
		case object.Blob:
			ow.one(p.target, mSend, kBlob)
		}
	}
	if err := ow.trees(trees, mSend); err != nil {
		return err
	}
	if f.req.includeTag {
		ow.includeTags(f.rs)
	}
	return nil
}

// markHaves marks the client's tags, trees and blobs among its haves (its
// commits are the walk's excludes).
func (f *fetch) markHaves(ow *objectWalk) error {
	var trees []object.ID
	for _, id := range f.common {
		p := f.have[id]
		for _, t := range p.chain {
			ow.one(t, mHave, kCommitOrTag)
		}
		switch p.ttype {
		case object.Tree:
			trees = append(trees, p.target)
		case object.Blob:
			ow.one(p.target, mHave, kBlob)
		}
	}
	return ow.trees(trees, mHave)
}
