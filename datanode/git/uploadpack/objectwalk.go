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

// Kinds of objects to send, in the order the pack holds them.
const (
	kCommitOrTag uint8 = iota
	kTree
	kBlob
)

// sendEntry is an object to send: its kind and, for trees and blobs, a
// hash of its path, so that the versions of one file sit next to each other
// in the pack and can be written as deltas of each other.
type sendEntry struct {
	id   object.ID
	kind uint8
	path uint32
}

// objectWalk decides which objects go into the pack: what is reachable from
// the wants and not from what the client has. It keeps, per object, its ID
// and a mark (about 60 bytes with the map's overhead) and the list of
// objects to send (28 bytes each); object bodies only one batch at a time.
type objectWalk struct {
	o         *objects
	omitBlobs bool // filter blob:none: blobs met in trees are not sent
	marks     map[object.ID]uint8
	send      []sendEntry
	progress  func(n int) // called as objects are counted
}

// pathID is a tree to read, with its path.
type pathID struct {
	id   object.ID
	path string
}

func newObjectWalk(o *objects, progress func(int)) *objectWalk {
	return &objectWalk{o: o, marks: map[object.ID]uint8{}, progress: progress}
}

func (w *objectWalk) add(id object.ID, kind uint8, path string) {
	if w.marks[id] == 0 {
		w.marks[id] = mSend
		w.send = append(w.send, sendEntry{id: id, kind: kind, path: pathHash(path)})
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
		w.add(id, kCommitOrTag, "")
	}
	return w.trees(trees, mSend)
}

// trees marks every tree and blob reachable from roots, level by level
// (one batch of reads per level, not per tree). Objects already marked are
// skipped with everything under them: the client has them, or they are
// already in the pack. Submodule entries (commits of another repository)
// are not followed, as Git does not.
func (w *objectWalk) trees(roots []object.ID, mark uint8) error {
	var level []pathID
	for _, id := range roots {
		if w.marks[id] == 0 {
			w.mark(id, mark, kTree, "")
			level = append(level, pathID{id: id})
		}
	}
	for len(level) > 0 {
		next, err := w.treeLevel(level, mark)
		if err != nil {
			return err
		}
		level = next
	}
	return nil
}

// treeLevel reads the trees of one level and returns the next level.
func (w *objectWalk) treeLevel(level []pathID, mark uint8) ([]pathID, error) {
	paths := make(map[object.ID]string, len(level))
	ids := make([]object.ID, len(level))
	for i, t := range level {
		paths[t.id], ids[i] = t.path, t.id
	}
	var next []pathID
	err := w.o.read(ids, func(id object.ID, t object.Type, body []byte) error {
		if t != object.Tree {
			return fmt.Errorf("uploadpack: %s is a %s, expected a tree", id, t)
		}
		entries, err := object.ParseTree(body)
		if err != nil {
			return fmt.Errorf("uploadpack: tree %s: %w", id, err)
		}
		if mark == mSend {
			w.o.keep(id, t, body)
		}
		for _, e := range entries {
			if e.Mode == object.ModeSubmodule || w.marks[e.ID] != 0 || (w.omitBlobs && !e.IsDir()) {
				continue
			}
			path := paths[id] + "/" + e.Name
			if e.IsDir() {
				next = append(next, pathID{id: e.ID, path: path})
				w.mark(e.ID, mark, kTree, path)
			} else {
				w.mark(e.ID, mark, kBlob, path)
			}
		}
		return nil
	})
	return next, err
}

// one marks a single object (a wanted or had tree root or blob).
func (w *objectWalk) one(id object.ID, mark, kind uint8) {
	if w.marks[id] == 0 {
		w.mark(id, mark, kind, "")
	}
}

func (w *objectWalk) mark(id object.ID, mark, kind uint8, path string) {
	if mark == mSend {
		w.add(id, kind, path)
	} else {
		w.marks[id] = mHave
	}
}

// pathHash is FNV-1a of a path.
func pathHash(path string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(path); i++ {
		h = (h ^ uint32(path[i])) * 16777619
	}
	return h
}

// tagChain sends the tag objects of a tag chain whose target is sent or
// wanted: include-tag, and wants that are annotated tags.
func (w *objectWalk) tagChain(p *peeled) {
	for _, t := range p.chain {
		w.one(t, mSend, kCommitOrTag)
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
