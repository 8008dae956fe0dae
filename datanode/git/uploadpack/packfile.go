package uploadpack

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"github.com/stratum-store/stratum/datanode/git/clonepack"
	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/packcache"
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

// sendPack decides what to send (see objectWalk) and streams the pack; a
// full clone's pack is the pack kept from the push that set the refs
// (clonepack), or comes from the pack cache, or goes into it.
func (f *fetch) sendPack(out *output) error {
	key, full := f.cacheKey()
	if full {
		if sent, err := f.sendKept(out); sent {
			return err
		}
	}
	var fill *packcache.Writer
	if full && f.t.cache != nil {
		cached, w, err := f.t.cache.Lookup(f.ctx, key)
		if err != nil {
			return err
		}
		if cached != nil {
			defer cached.Close()
			out.progressf("Reusing a pack of %d bytes written for the same tips\n", cached.Size)
			if _, err := io.Copy(out.data, cached); err != nil {
				return err
			}
			return out.data.Flush()
		}
		if fill = w; fill != nil { // nil: another clone has been filling it too long; write ours uncached
			defer fill.Abort() // a no-op after Commit
		}
	}
	ow := newObjectWalk(f.o, func(n int) { out.progressf("Counting objects: %d\r", n) })
	ow.omitBlobs = f.req.filter == "blob:none"
	if err := f.walk(ow); err != nil {
		return err
	}
	out.progressf("Counting objects: %d, done.\n", len(ow.send))
	if fill == nil {
		return f.writePack(out.data, out, ow.send)
	}
	if err := f.writePack(io.MultiWriter(out.data, fill), out, ow.send); err != nil {
		return err
	}
	fill.Commit() // a pack the cache could not keep costs the next clone, never this one
	return nil
}

// sendKept sends the pack kept for these refs (package clonepack) if
// there is one that answers this clone exactly; sent is false, and nothing
// written, when there is none: the pack is then generated. Once sent, an
// error is a failed clone (a damaged pack is caught by its checksum at the
// end, and git refuses what it received).
func (f *fetch) sendKept(out *output) (sent bool, err error) {
	wants := make([]string, len(f.req.wants))
	for i, id := range f.req.wants {
		wants[i] = id.String()
	}
	r, m, err := clonepack.Open(f.ctx, f.t.b, clonepack.Clone{Refs: f.rs.raw, Wants: wants, OfsDelta: f.req.ofsDelta})
	if err != nil {
		return false, nil
	}
	defer r.Close()
	out.progressf("Reusing the pushed pack of %d objects\n", m.Objects)
	if _, err := io.Copy(out.data, r); err != nil {
		return true, err
	}
	return true, out.data.Flush()
}

// cacheKey names everything a full clone's pack depends on: the
// repository, the wanted IDs, the capabilities that change the pack, and
// the refs when tags are included. ok is false for any other fetch (haves
// in common, a shallow boundary, a filter): those are not cached.
func (f *fetch) cacheKey() (key string, ok bool) {
	if len(f.common) > 0 || f.req.deepens() || len(f.req.shallows) > 0 || len(f.plan.grafts) > 0 || f.req.filter != "" {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "stratum upload-pack v1\x00%s\x00ofs=%t\x00tags=%t\x00", f.t.repo, f.req.ofsDelta, f.req.includeTag)
	wants := slices.Clone(f.req.wants)
	sortIDs(wants)
	for _, id := range slices.Compact(wants) {
		fmt.Fprintf(h, "want %s\x00", id)
	}
	if f.req.includeTag {
		for _, r := range f.rs.refs {
			fmt.Fprintf(h, "ref %s %s\x00", r.name, r.id)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
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
