package uploadpack

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// fetch is one fetch request being answered: the repository's refs, the
// wants checked against them, the haves the store holds, the shallow plan.
type fetch struct {
	ctx    context.Context
	t      target
	o      *objects
	rs     *refSet
	req    *fetchRequest
	wants  map[object.ID]*peeled
	common []object.ID // haves the store holds, in the client's order
	have   map[object.ID]*peeled
	plan   *shallowPlan
}

// newFetch reads the refs, refuses a want that is not ours, finds which
// haves are common and plans the shallow boundary. Nothing is written: its
// errors go back as an ERR packet.
func newFetch(ctx context.Context, t target, req *fetchRequest) (*fetch, error) {
	f := &fetch{ctx: ctx, t: t, o: newObjects(ctx, t.b), req: req}
	var err error
	if f.rs, err = loadRefs(f.o, t.repo, true); err != nil {
		return nil, err
	}
	if err := f.checkWants(); err != nil {
		return nil, err
	}
	if err := f.findCommon(); err != nil {
		return nil, err
	}
	shallows, err := f.clientShallows()
	if err != nil {
		return nil, err
	}
	return f, f.planShallow(f.wantCommits(), shallows)
}

// checkWants refuses wants that are neither ref tips nor commits reachable
// from a tip (ErrNotOurRef, "upload-pack: not our ref <oid>" as Git says),
// and peels every want.
func (f *fetch) checkWants() error {
	tips := f.rs.tips()
	var others []object.ID
	for _, id := range f.req.wants {
		if !tips[id] {
			others = append(others, id)
		}
	}
	present, err := f.has(others)
	if err != nil {
		return err
	}
	for i, id := range others {
		if !present[i] {
			return notOurRef(id)
		}
	}
	if f.wants, err = f.o.peel(f.req.wants); err != nil {
		return err
	}
	return f.checkReachable(others)
}

// checkReachable refuses any of ids that is not reachable from a ref tip:
// commits by a walk of the commits, trees and blobs (a partial clone's
// lazy fetch asks for blobs by ID) by a walk of every tree of the history.
func (f *fetch) checkReachable(ids []object.ID) error {
	var commits, others []object.ID
	for _, id := range ids {
		if f.wants[id].typ == object.Commit {
			commits = append(commits, id)
		} else {
			others = append(others, id)
		}
	}
	found, err := f.reachable(commits)
	if err != nil {
		return err
	}
	if err := f.reachableObjects(others, found); err != nil {
		return err
	}
	for _, id := range ids {
		if !found[id] {
			return notOurRef(id)
		}
	}
	return nil
}

// reachableObjects adds to found those of ids (any type) reachable from a
// ref: it walks every commit and tree of the repository (blobs are named
// by their trees, not read), so it costs a clone's walk.
func (f *fetch) reachableObjects(ids []object.ID, found map[object.ID]bool) error {
	if len(ids) == 0 {
		return nil
	}
	var tips []object.ID
	for _, r := range f.rs.refs {
		tips = append(tips, r.id)
	}
	peeled, err := f.o.peel(tips)
	if err != nil {
		return err
	}
	ow := newObjectWalk(f.o, func(int) {})
	var commits, trees []object.ID
	for _, p := range peeled {
		ow.tagChain(p)
		switch p.ttype {
		case object.Commit:
			commits = append(commits, p.target)
		case object.Tree:
			trees = append(trees, p.target)
		case object.Blob:
			ow.one(p.target, mSend, kBlob)
		}
	}
	cw := newCommitWalk(f.o, nil)
	all, err := cw.run(commits, nil)
	if err == nil {
		err = ow.commits(all, cw, nil)
	}
	if err == nil {
		err = ow.trees(trees, mSend)
	}
	for _, id := range ids {
		found[id] = found[id] || ow.marks[id] == mSend
	}
	return err
}

// reachable returns which of the commits ids are reachable from a ref tip.
// It walks the history from the tips breadth-first until it has found them
// all: a client names such a commit when a ref moved between its requests
// or as its shallow boundary, so it is usually near a tip. An ID that is
// not reachable costs a walk of the whole history.
func (f *fetch) reachable(ids []object.ID) (map[object.ID]bool, error) {
	found := map[object.ID]bool{}
	if len(ids) == 0 {
		return found, nil
	}
	lost := map[object.ID]bool{}
	for _, id := range ids {
		lost[id] = true
	}
	var tips []object.ID
	for _, r := range f.rs.refs {
		tips = append(tips, r.id)
	}
	tipCommits, err := f.peelToCommits(tips)
	if err != nil {
		return nil, err
	}
	visited := map[object.ID]bool{}
	for level := dedup(tipCommits, visited); len(level) > 0 && len(lost) > 0; {
		if err := f.o.loadCommits(level); err != nil {
			return nil, err
		}
		var next []object.ID
		for _, id := range level {
			if lost[id] {
				delete(lost, id)
				found[id] = true
			}
			next = append(next, dedup(f.o.commits[id].parents, visited)...)
		}
		level = next
	}
	return found, nil
}

// peelToCommits peels ids and keeps the commits among their targets.
func (f *fetch) peelToCommits(ids []object.ID) ([]object.ID, error) {
	p, err := f.o.peel(ids)
	if err != nil {
		return nil, err
	}
	var out []object.ID
	for _, id := range ids {
		if p[id].ttype == object.Commit {
			out = append(out, p[id].target)
		}
	}
	return out, nil
}

// wantCommits is the commits the wants peel to, with the parents of
// unshallowed commits once the plan exists.
func (f *fetch) wantCommits() []object.ID {
	var out []object.ID
	for _, id := range f.req.wants {
		if p := f.wants[id]; p.ttype == object.Commit {
			out = append(out, p.target)
		}
	}
	if f.plan != nil {
		out = append(out, f.plan.wants...)
	}
	return out
}

// findCommon keeps the haves the store holds, and peels them.
func (f *fetch) findCommon() error {
	present, err := f.has(f.req.haves)
	if err != nil {
		return err
	}
	seen := map[object.ID]bool{}
	for i, id := range f.req.haves {
		if present[i] && !seen[id] {
			seen[id] = true
			f.common = append(f.common, id)
		}
	}
	f.have, err = f.o.peel(f.common)
	return err
}

// clientShallows keeps the client's shallow commits the store holds (Git
// ignores unknown ones) and loads them.
func (f *fetch) clientShallows() ([]object.ID, error) {
	present, err := f.has(f.req.shallows)
	if err != nil {
		return nil, err
	}
	var out []object.ID
	for i, id := range f.req.shallows {
		if present[i] {
			out = append(out, id)
		}
	}
	if err := f.o.loadCommits(out); err != nil {
		return nil, protocolErr("invalid shallow object: %v", err)
	}
	return out, nil
}

// has asks the backend which of ids it holds, batchSize at a time.
func (f *fetch) has(ids []object.ID) ([]bool, error) {
	out := make([]bool, 0, len(ids))
	for start := 0; start < len(ids); start += batchSize {
		chunk := ids[start:min(start+batchSize, len(ids))]
		oids := make([]api.OID, len(chunk))
		for i, id := range chunk {
			oids[i] = api.MustParseOID(id.String())
		}
		ok, err := f.o.b.Has(f.o.ctx, oids)
		if err != nil {
			return nil, fmt.Errorf("uploadpack: asking for objects: %w", err)
		}
		out = append(out, ok...)
	}
	return out, nil
}

// haveCommits is the commits the common haves peel to.
func (f *fetch) haveCommits() []object.ID {
	var out []object.ID
	for _, id := range f.common {
		if p := f.have[id]; p.ttype == object.Commit {
			out = append(out, p.target)
		}
	}
	return out
}

// readyToSend is Git's ok_to_give_up: every want reaches a commit the
// client has (a common have or its parent) without going back further than
// the oldest common have. Then more negotiation would not shrink the pack
// much, and the server says "ready".
func (f *fetch) readyToSend() (bool, error) {
	haves := f.haveCommits()
	if len(haves) == 0 {
		return false, nil
	}
	theyHave := map[object.ID]bool{}
	oldest := int64(1<<63 - 1)
	for _, id := range haves {
		c := f.o.commits[id]
		theyHave[id] = true
		for _, p := range c.parents {
			theyHave[p] = true
		}
		oldest = min(oldest, c.time)
	}
	for _, id := range f.req.wants {
		if p := f.wants[id]; p.ttype != object.Commit {
			return false, nil
		}
		ok, err := f.reaches(f.wants[id].target, theyHave, oldest)
		if !ok || err != nil {
			return false, err
		}
		theyHave[f.wants[id].target] = true // a later want may stop here
	}
	return true, nil
}

// reaches walks back from id, not past commits older than oldest, until it
// meets one of targets.
func (f *fetch) reaches(id object.ID, targets map[object.ID]bool, oldest int64) (bool, error) {
	visited := map[object.ID]bool{}
	for level := dedup([]object.ID{id}, visited); len(level) > 0; {
		if err := f.o.loadCommits(level); err != nil {
			return false, err
		}
		var next []object.ID
		for _, c := range level {
			if targets[c] {
				return true, nil
			}
			if ci := f.o.commits[c]; ci.time >= oldest {
				next = append(next, dedup(ci.parents, visited)...)
			}
		}
		level = next
	}
	return false, nil
}

func sortIDs(ids []object.ID) {
	slices.SortFunc(ids, func(a, b object.ID) int { return bytes.Compare(a[:], b[:]) })
}
