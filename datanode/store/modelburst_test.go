package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
)

// burst runs several goroutines at once, each a few operations drawn
// from its own seeded source over a handful of hot objects (so they
// collide: re-puts, deletes, removals, batches with duplicates, reads,
// expiry and value log collection of the same objects at once), then,
// once all are done, checks each object: some order of the operations on
// it must explain every outcome and the state it is left in.
func (r *modelRun) burst() {
	const goroutines, perG = 4, 8
	hot := r.rng.Perm(len(r.objs))[:3+r.rng.IntN(4)]
	plans := make([][]planned, goroutines)
	for g := range plans {
		rng := rand.New(rand.NewPCG(r.seed, uint64(r.bursts)<<8|uint64(g)))
		for range perG {
			plans[g] = append(plans[g], r.plan(rng, hot, true))
		}
	}
	// hist[i][g]: goroutine g's operations on object i, in its order.
	hist := make([][][]*mop, len(r.objs))
	for i := range hist {
		hist[i] = make([][]*mop, goroutines)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]string, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range plans[g] {
				ops, problem := r.execConcurrent(p, g)
				if problem != "" {
					errs[g] = problem
					return
				}
				mu.Lock()
				for i, o := range ops {
					hist[i][g] = append(hist[i][g], o)
				}
				mu.Unlock()
			}
		}()
	}
	stop := r.collectInBackground()
	wg.Wait()
	if err := stop(); err != nil {
		r.fail("burst %d: background CollectValueLog: %v", r.bursts, err)
	}
	for g, e := range errs {
		if e != "" {
			r.fail("burst %d, goroutine %d: %s", r.bursts, g, e)
		}
	}
	r.bursts++
	r.done += goroutines * perG
	for i := range r.objs {
		r.settle(i, hist[i])
	}
	r.checkAll(fmt.Sprintf("after burst %d", r.bursts-1))
}

// execConcurrent runs p as goroutine g; expiry becomes an operation on
// every object, collection on none.
func (r *modelRun) execConcurrent(p planned, g int) (map[int]*mop, string) {
	switch p.kind {
	case "collect":
		freed, err := r.s.CollectValueLog(ctx)
		if err != nil {
			return nil, fmt.Sprintf("CollectValueLog: %v", err)
		}
		r.concFreed.Add(freed)
		return nil, ""
	case "expire":
		if _, err := r.s.ExpireTombstones(ctx, p.at); err != nil {
			return nil, fmt.Sprintf("ExpireTombstones: %v", err)
		}
		out := map[int]*mop{}
		for i := range r.objs {
			out[i] = &mop{kind: kExpire, g: g, at: p.at}
		}
		return out, ""
	}
	return r.exec(p, g), ""
}

// settle checks object i after a burst: the state the store holds must be
// reachable from the model's by some interleaving of the goroutines'
// operations that gives each its recorded outcome. That state becomes
// the model's.
func (r *modelRun) settle(i int, seqs [][]*mop) {
	got, err := r.observe(i)
	if err != nil {
		r.fail("object %d (%s) after burst %d: %v\n%s", i, r.objs[i].oid, r.bursts-1, err, history(seqs))
	}
	if !linearize(r.model[i], seqs, r.objs[i].data, got) {
		r.fail("object %d (%s, %d bytes) after burst %d: no order of its operations from %v explains their outcomes and the state %v\n%s",
			i, r.objs[i].oid, len(r.objs[i].data), r.bursts-1, r.model[i], got, history(seqs))
	}
	r.model[i] = got
}

func history(seqs [][]*mop) string {
	var b strings.Builder
	for _, seq := range seqs {
		for _, o := range seq {
			fmt.Fprintf(&b, "  %s\n", o)
		}
	}
	return b.String()
}

// collectInBackground runs value log collections back to back, as a data
// node's collector might, until the returned function stops it; that
// returns the first collection error.
func (r *modelRun) collectInBackground() (stop func() error) {
	done := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				result <- nil
				return
			default:
			}
			freed, err := r.s.CollectValueLog(ctx)
			if err != nil {
				result <- err
				return
			}
			r.concFreed.Add(freed)
			runtime.Gosched()
		}
	}()
	return func() error {
		close(done)
		return <-result
	}
}
