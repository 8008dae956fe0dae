package receivepack

import (
	"context"
	"fmt"
	"sync"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// missing returns how many objects the push needs that are neither in the
// pack nor stored, and the first of them: the objects the pack's objects
// name (u.links) and the new tips. u may be nil (a push of existing
// objects only).
func missing(ctx context.Context, b backend.Backend, u *unpacked, tips []string, l Limits) (int, string, error) {
	var want []api.OID
	seen := map[string]bool{}
	for _, t := range tips {
		id, err := object.ParseID(t)
		if err != nil || seen[t] {
			continue
		}
		seen[t] = true
		if u != nil {
			if _, ok := u.have[id]; ok {
				continue
			}
		}
		want = append(want, toOID(id))
	}
	if u != nil {
		for id := range u.links {
			want = append(want, toOID(id))
		}
	}
	n, first := 0, ""
	for start := 0; start < len(want); start += l.BatchObjects {
		batch := want[start:min(start+l.BatchObjects, len(want))]
		has, err := b.Has(ctx, batch)
		if err != nil {
			return 0, "", fmt.Errorf("checking stored objects: %w", err)
		}
		for i, ok := range has {
			if !ok {
				if n++; n == 1 {
					first = batch[i].String()
				}
			}
		}
	}
	return n, first, nil
}

// store puts the last, partial batch, once the push is known to be
// connected, and waits for every Put of the push: full batches were put
// while the pack was read (unpack), in batches of at most
// Limits.BatchObjects objects and BatchBytes bytes (one object may exceed
// it alone), up to Limits.PutConcurrency batches at a time: against a
// cluster each Put waits for a quorum, and overlapping them hides that
// latency. It returns how many objects were stored, and the first error.
func (u *unpacked) store() (int, error) {
	u.flush() // a failure is the putter's first error, which wait returns
	return u.put.wait()
}

// putter runs Backend.Put calls, at most n at once, and keeps the first
// error; after it, no new Put starts and the running ones are cancelled.
type putter struct {
	ctx    context.Context
	cancel context.CancelFunc
	b      backend.Backend
	sem    chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	stored int
	err    error
}

func newPutter(ctx context.Context, b backend.Backend, n int) *putter {
	ctx, cancel := context.WithCancel(ctx)
	return &putter{ctx: ctx, cancel: cancel, b: b, sem: make(chan struct{}, n)}
}

// put starts a Put of batch once a slot is free; it reports false if the
// store has already failed.
func (p *putter) put(batch []backend.Object) bool {
	select {
	case p.sem <- struct{}{}:
	case <-p.ctx.Done():
		p.fail(p.ctx.Err())
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.sem }()
		if err := p.b.Put(p.ctx, batch); err != nil {
			p.fail(fmt.Errorf("storing objects: %w", err))
			return
		}
		p.mu.Lock()
		p.stored += len(batch)
		p.mu.Unlock()
	}()
	return true
}

func (p *putter) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		p.cancel()
	}
}

// progress is how many objects the finished Puts stored, and the first
// error, without waiting.
func (p *putter) progress() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stored, p.err
}

// wait waits for every Put and returns the count stored and the first error.
func (p *putter) wait() (int, error) {
	p.wg.Wait()
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stored, p.err
}
