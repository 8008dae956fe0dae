package uploadpack

import (
	"container/heap"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Flags of a commit in a commitWalk.
const (
	fSeen          uint8 = 1 << iota
	fUninteresting       // reachable from an exclude: the client has it
	fInHeap              // queued
	fIncluded            // popped as interesting: part of the result
)

// commitWalk lists the commits reachable from some commits and not from
// others (git rev-list A --not B), newest first, like Git's limited walk:
// a queue ordered by committer time, where an excluded commit passes its
// mark to its parents, and the walk stops once every queued commit is
// excluded. So it reads the history of the excludes only as far back as
// the oldest included commit, not to the root.
//
// Clock skew (a parent newer than its child) can make it include a commit
// the client has: the pack is then larger than needed, never short.
//
// Commits are read in batches: each round loads every commit queued since
// the last round in one Backend.Get. A linear history still costs one call
// per commit (a parent's ID is known only once its child is read).
type commitWalk struct {
	o      *objects
	grafts map[object.ID]bool // commits whose parents are not followed (shallow)
	since  int64              // commits older than this are excluded (deepen-since); 0: no limit
	flags  map[object.ID]uint8
	queue  commitHeap
	todo   []object.ID // seen, not loaded yet
	live   int         // queued commits not excluded
	out    []object.ID
}

func newCommitWalk(o *objects, grafts map[object.ID]bool) *commitWalk {
	return &commitWalk{o: o, grafts: grafts, flags: map[object.ID]uint8{}, queue: commitHeap{o: o}}
}

// run walks from include, excluding what is reachable from exclude, and
// returns the included commits, newest first.
func (w *commitWalk) run(include, exclude []object.ID) ([]object.ID, error) {
	for _, id := range exclude {
		w.add(id, true)
	}
	for _, id := range include {
		w.add(id, false)
	}
	for {
		if err := w.loadTodo(); err != nil {
			return nil, err
		}
		if w.live == 0 {
			return w.out, nil
		}
		w.step(heap.Pop(&w.queue).(object.ID))
	}
}

func (w *commitWalk) add(id object.ID, excluded bool) {
	f := w.flags[id]
	if f&fSeen == 0 {
		f = fSeen
		w.todo = append(w.todo, id)
	}
	if excluded && f&fUninteresting == 0 {
		f |= fUninteresting
		if f&fInHeap != 0 {
			w.live--
		}
	}
	w.flags[id] = f
}

func (w *commitWalk) loadTodo() error {
	if len(w.todo) == 0 {
		return nil
	}
	if err := w.o.loadCommits(w.todo); err != nil {
		return err
	}
	for _, id := range w.todo {
		w.flags[id] |= fInHeap
		if w.flags[id]&fUninteresting == 0 {
			w.live++
		}
		heap.Push(&w.queue, id)
	}
	w.todo = w.todo[:0]
	return nil
}

func (w *commitWalk) step(id object.ID) {
	f := w.flags[id] &^ fInHeap
	c := w.o.commits[id]
	if f&fUninteresting == 0 {
		w.live--
		if w.since != 0 && c.time < w.since {
			f |= fUninteresting
		}
	}
	w.flags[id] = f
	if f&fUninteresting == 0 {
		w.flags[id] |= fIncluded
		w.out = append(w.out, id)
	}
	if w.grafts[id] {
		return
	}
	for _, p := range c.parents {
		w.add(p, f&fUninteresting != 0)
	}
}

// excluded reports whether id was found reachable from an exclude.
func (w *commitWalk) excluded(id object.ID) bool { return w.flags[id]&fUninteresting != 0 }

// commitHeap orders commit IDs newest first.
type commitHeap struct {
	o   *objects
	ids []object.ID
}

func (h commitHeap) Len() int { return len(h.ids) }
func (h commitHeap) Less(i, j int) bool {
	return h.o.commits[h.ids[i]].time > h.o.commits[h.ids[j]].time
}
func (h commitHeap) Swap(i, j int) { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *commitHeap) Push(x any)   { h.ids = append(h.ids, x.(object.ID)) }
func (h *commitHeap) Pop() any {
	n := len(h.ids) - 1
	x := h.ids[n]
	h.ids = h.ids[:n]
	return x
}
