package uploadpack

import (
	"cmp"
	"errors"
	"io"
	"slices"

	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pack"
)

// maxDeltaDepth bounds delta chains, as git's pack.depth (default 50)
// does: a longer chain costs the client more to resolve.
const maxDeltaDepth = 50

// packOrder sorts what to send the way the pack holds it: commits and tags
// first, in walk order (newest first), then trees, then blobs, each grouped
// by path and, within a path, in walk order, so that the versions of a file
// follow each other, newest first.
func packOrder(send []sendEntry) {
	slices.SortStableFunc(send, func(a, b sendEntry) int {
		if c := cmp.Compare(a.kind, b.kind); c != 0 || a.kind == kCommitOrTag {
			return c
		}
		return cmp.Compare(a.path, b.path)
	})
}

// deltaWriter writes objects to a pack, each tree or blob as an OFS delta
// of the object written just before it when that one is an earlier version
// of the same path and the delta saves at least half of the object. The
// deltas are pack.AppendDelta's (common prefix and suffix copied): cheap
// to compute, and enough for files edited in one place, trees with one
// changed entry, and files that grow at the end. It holds one base body.
type deltaWriter struct {
	pw    *pack.Writer
	ofs   bool
	prev  sendEntry
	base  []byte // the previous object's body
	off   int64  // its offset
	depth int    // its chain depth
	typ   object.Type
	n     int // objects written
	saved int // deltas written
}

func (d *deltaWriter) add(e sendEntry, t object.Type, body []byte) error {
	d.n++
	var off int64
	var err error
	if d.useDelta(e, t, body) {
		off, err = d.pw.AddOfsDelta(d.off, d.base, body)
		d.depth++
		d.saved++
	} else {
		off, err = d.pw.Add(t, body)
		d.depth = 0
	}
	d.prev, d.off, d.typ = e, off, t
	d.base = append(d.base[:0], body...)
	return err
}

func (d *deltaWriter) useDelta(e sendEntry, t object.Type, body []byte) bool {
	if !d.ofs || e.kind == kCommitOrTag || d.n == 1 || e.kind != d.prev.kind ||
		e.path != d.prev.path || t != d.typ || d.depth >= maxDeltaDepth || len(body) < 64 {
		return false
	}
	return common(d.base, body) >= len(body)/2
}

// common is the length of the common prefix plus the common suffix.
func common(a, b []byte) int {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	return p + s
}

// readInOrder is objects.read in the order of ids: each batch's bodies are
// copied as Get hands them over, then passed on in order. One batch is read
// ahead by another goroutine while fn works on the one before (a clone
// reads and compresses at once, on two cores instead of one), so memory
// holds at most three batches of bodies: the one fn has, the one ready and
// the one being read (besides what the walk kept, objects.keep). The walk
// is over by then, so the reading goroutine is the only user of o.kept.
func (o *objects) readInOrder(ids []sendEntry, fn func(e sendEntry, t object.Type, body []byte) error) error {
	ready := make(chan readBatch, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ready)
		for start := 0; start < len(ids); start += batchSize {
			b := o.readBatch(ids[start:min(start+batchSize, len(ids))])
			select {
			case ready <- b:
			case <-stop:
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for b := range ready {
		if b.err != nil {
			return b.err
		}
		for _, e := range b.chunk {
			g, ok := b.bodies[e.id]
			if !ok {
				return missing(e.id, errors.New("the backend did not answer for it"))
			}
			if err := fn(e, g.t, g.body); err != nil {
				return err
			}
		}
	}
	return nil
}

// readBatch is one batch of readInOrder: its entries and their bodies, or
// the error that stops the read.
type readBatch struct {
	chunk  []sendEntry
	bodies map[object.ID]typedBody
	err    error
}

type typedBody struct {
	t    object.Type
	body []byte
}

// readBatch reads one batch of readInOrder: what the walk kept is taken
// from memory, the rest read through the Backend.
func (o *objects) readBatch(chunk []sendEntry) readBatch {
	b := readBatch{chunk: chunk, bodies: make(map[object.ID]typedBody, len(chunk))}
	ids := make([]object.ID, 0, len(chunk))
	for _, e := range chunk {
		if k, ok := o.take(e.id); ok {
			b.bodies[e.id] = k
		} else {
			ids = append(ids, e.id)
		}
	}
	b.err = o.read(ids, func(id object.ID, t object.Type, body []byte) error {
		b.bodies[id] = typedBody{t, slices.Clone(body)}
		return nil
	})
	return b
}

// writePack streams the pack: objects read in batches, in packOrder,
// deltified when the client reads OFS deltas.
func (f *fetch) writePack(dst io.Writer, out *output, send []sendEntry) error {
	packOrder(send)
	pw, err := pack.NewWriter(dst, uint32(len(send)))
	if err != nil {
		return err
	}
	d := &deltaWriter{pw: pw, ofs: f.req.ofsDelta}
	err = f.o.readInOrder(send, func(e sendEntry, t object.Type, body []byte) error {
		if d.n%1000 == 999 {
			out.progressf("Writing objects: %3d%% (%d/%d)\r", (d.n+1)*100/len(send), d.n+1, len(send))
		}
		return d.add(e, t, body)
	})
	if err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}
	out.progressf("Writing objects: 100%% (%d/%d), done.\nTotal %d (delta %d)\n", d.n, len(send), d.n, d.saved)
	return out.data.Flush()
}
