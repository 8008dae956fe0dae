package uploadpack

import (
	"math"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// shallowPlan is the answer to a shallow request: the shallow and unshallow
// lines to send, and how the pack walk must see the history.
type shallowPlan struct {
	shallow   []object.ID        // new boundary commits: sent, their parents not
	unshallow []object.ID        // client boundaries whose parents are now sent
	grafts    map[object.ID]bool // commits whose parents the walk does not follow
	wants     []object.ID        // parents of unshallowed commits: wanted too
}

// infiniteDepth is what `git fetch --unshallow` sends as its depth.
const infiniteDepth = math.MaxInt32

// planShallow computes the shallow boundary as Git's upload-pack does:
// deepen N keeps the commits fewer than N steps from a want; deepen-since
// and deepen-not keep the commits `git rev-list --max-age=T --not R wants`
// lists, and a kept commit with a parent not kept is a boundary. Commits
// the client already has as shallow (clientShallow) that are kept with
// their parents are unshallowed. Every client boundary stays a graft of
// the walk, as Git registers them, so the walk never assumes the client has
// what lies behind them.
func (f *fetch) planShallow(wants []object.ID, clientShallow []object.ID) error {
	p := &shallowPlan{grafts: map[object.ID]bool{}}
	f.plan = p
	for _, id := range clientShallow {
		p.grafts[id] = true
	}
	if !f.req.deepens() {
		return nil
	}
	var kept, border map[object.ID]bool
	var err error
	switch {
	case f.req.depth > 0 && f.req.deepenRelative:
		kept, border, err = f.keepRelative(clientShallow)
	case f.req.depth > 0:
		kept, border, err = f.keepByDepth(wants, f.req.depth)
	default:
		kept, border, err = f.keepByRevList(wants)
	}
	if err != nil {
		return err
	}
	for id := range border {
		if !p.grafts[id] {
			p.shallow = append(p.shallow, id)
		}
		p.grafts[id] = true
	}
	for _, id := range clientShallow {
		if kept[id] {
			p.unshallow = append(p.unshallow, id)
			p.wants = append(p.wants, f.o.commits[id].parents...)
		}
	}
	sortIDs(p.shallow)
	return nil
}

// keepRelative is deepen with deepen-relative (git fetch --deepen N): N
// more commits behind the client's boundary commits that are reachable
// from a ref (others could belong to another repository).
func (f *fetch) keepRelative(clientShallow []object.ID) (kept, border map[object.ID]bool, err error) {
	found, err := f.reachable(clientShallow)
	if err != nil {
		return nil, nil, err
	}
	var roots []object.ID
	for _, id := range clientShallow {
		if found[id] {
			roots = append(roots, id)
		}
	}
	depth := f.req.depth
	if depth < infiniteDepth {
		depth++
	}
	return f.keepByDepth(roots, depth)
}

// keepByDepth walks breadth-first from wants (depth 1): commits at depth
// below the limit are kept, commits at the limit are the boundary. One
// batch of reads per level.
func (f *fetch) keepByDepth(wants []object.ID, depth int) (kept, border map[object.ID]bool, err error) {
	kept, border = map[object.ID]bool{}, map[object.ID]bool{}
	if depth >= infiniteDepth {
		// --unshallow: the whole history of the wants, which unshallows
		// every client boundary in it. (Git unshallows every client
		// boundary, even one no want reaches; here a boundary must be
		// reached from a want, or a client could name another
		// repository's commit and receive its history.)
		depth = math.MaxInt
	}
	visited := map[object.ID]bool{}
	level := dedup(wants, visited)
	for d := 1; len(level) > 0; d++ {
		if err := f.o.loadCommits(level); err != nil {
			return nil, nil, err
		}
		var next []object.ID
		for _, id := range level {
			if d >= depth {
				border[id] = true
				continue
			}
			kept[id] = true
			next = append(next, dedup(f.o.commits[id].parents, visited)...)
		}
		level = next
	}
	return kept, border, nil
}

// keepByRevList keeps the commits reachable from wants, not from the
// deepen-not refs, and not older than deepen-since.
func (f *fetch) keepByRevList(wants []object.ID) (kept, border map[object.ID]bool, err error) {
	var exclude []object.ID
	for _, name := range f.req.deepenNot {
		id, ok := f.rs.resolve(name)
		if !ok {
			return nil, nil, protocolErr("ambiguous deepen-not: %s", name)
		}
		exclude = append(exclude, id)
	}
	exclude, err = f.peelToCommits(exclude)
	if err != nil {
		return nil, nil, err
	}
	w := newCommitWalk(f.o, nil)
	w.since = f.req.since
	list, err := w.run(wants, exclude)
	if err != nil {
		return nil, nil, err
	}
	if len(list) == 0 {
		return nil, nil, protocolErr("no commits selected for shallow requests")
	}
	kept, border = map[object.ID]bool{}, map[object.ID]bool{}
	for _, id := range list {
		kept[id] = true
	}
	for _, id := range list {
		for _, p := range f.o.commits[id].parents {
			if !kept[p] {
				border[id] = true
			}
		}
	}
	for id := range border {
		delete(kept, id)
	}
	return kept, border, nil
}

// dedup returns those of ids not in visited, and adds them to it.
func dedup(ids []object.ID, visited map[object.ID]bool) []object.ID {
	var out []object.ID
	for _, id := range ids {
		if !visited[id] {
			visited[id] = true
			out = append(out, id)
		}
	}
	return out
}
