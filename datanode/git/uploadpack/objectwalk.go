package uploadpack

import (
	"fmt"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Marks of an object in an objectWalk.
const (
	mHave uint8 = 1 // the client has it: not sent
	mSend uint8 = 2 // in the pack
)

// objectWalk decides which objects go into the pack: what is reachable from
// the wants and not from what the client has. It keeps, per object, its ID
// and a mark (about 60 bytes with the map's overhead) and the list of
// objects to send (20 bytes each); object bodies only one batch at a time.
type objectWalk struct {
	o        *objects
	marks    map[object.ID]uint8
	send     []object.ID
	progress func(n int) // called as objects are counted
}

func newObjectWalk(o *objects, progress func(int)) *objectWalk {
	return &objectWalk{o: o, marks: map[object.ID]uint8{}, progress: progress}
}

func (w *objectWalk) add(id object.ID) {
	if w.marks[id] == 0 {
		w.marks[id] = mSend
		w.send = append(w.send, id)
		if len(w.send)%1000 == 0 {
			w.progress(len(w.send))
		}
	}
}

// commits sends the included commits and their trees, not the trees of
// the boundary (the excluded parents of included commits) nor of the
// client's own commits (have).
func (w *objectWalk) commits(included []object.ID, walk *commitWalk, have []object.ID) error {
	var haveTrees, trees []object.ID
	for _, id := range have {
		haveTrees = append(haveTrees, w.o.commits[id].tree)
	}
	for _, id := range included {
		c := w.o.commits[id]
		trees = append(trees, c.tree)
		if walk.grafts[id] {
			continue
		}
		for _, p := range c.parents {
			if walk.excluded(p) {
				haveTrees = append(haveTrees, w.o.commits[p].tree)
			}
		}
	}
	if err := w.trees(haveTrees, mHave); err != nil {
		return err
	}
	for _, id := range included {
		w.add(id)
	}
	return w.trees(trees, mSend)
}

// trees marks every tree and blob reachable from roots, level by level
// (one batch of reads per level, not per tree). Objects already marked are
// skipped with everything under them: the client has them, or they are
// already in the pack. Submodule entries (commits of another repository)
// are not followed, as Git does not.
func (w *objectWalk) trees(roots []object.ID, mark uint8) error {
	level := w.unmarked(roots, mark)
	for len(level) > 0 {
		var next []object.ID
		err := w.o.read(level, func(id object.ID, t object.Type, body []byte) error {
			if t != object.Tree {
				return fmt.Errorf("uploadpack: %s is a %s, expected a tree", id, t)
			}
			entries, err := object.ParseTree(body)
			if err != nil {
				return fmt.Errorf("uploadpack: tree %s: %w", id, err)
			}
			for _, e := range entries {
				if e.Mode == object.ModeSubmodule || w.marks[e.ID] != 0 {
					continue
				}
				if e.IsDir() {
					next = append(next, e.ID)
				}
				w.mark(e.ID, mark)
			}
			return nil
		})
		if err != nil {
			return err
		}
		level = next
	}
	return nil
}

// unmarked marks and returns those of ids not marked yet.
func (w *objectWalk) unmarked(ids []object.ID, mark uint8) []object.ID {
	var out []object.ID
	for _, id := range ids {
		if w.marks[id] == 0 {
			w.mark(id, mark)
			out = append(out, id)
		}
	}
	return out
}

func (w *objectWalk) mark(id object.ID, mark uint8) {
	if mark == mSend {
		w.add(id)
	} else {
		w.marks[id] = mHave
	}
}

// tags sends the tag objects of a tag chain whose target is sent or
// wanted: include-tag, and wants that are annotated tags.
func (w *objectWalk) tagChain(p *peeled) {
	for _, t := range p.chain {
		if w.marks[t] == 0 {
			w.add(t)
		}
	}
}

// includeTags adds the annotated tags of refs/tags/* whose target is in
// the pack (include-tag): a client that fetches a commit then gets its
// release tags without asking for them.
func (w *objectWalk) includeTags(rs *refSet) {
	for _, p := range rs.tags {
		if p.typ == object.Tag && w.marks[p.target] == mSend {
			w.tagChain(p)
		}
	}
}
