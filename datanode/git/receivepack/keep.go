package receivepack

import (
	"context"
	"os"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
)

// keeper stores a pushed pack for clones (package clonepack) beside the
// rest of the push: it starts once the pack is verified, runs while the
// push checks connectivity and stores its last batch, and is published
// only after the push's own ref transaction has committed. It never fails
// the push: a pack that cannot be kept costs later clones a generated
// pack, nothing else.
type keeper struct {
	spool  *clonepack.Spool
	cancel context.CancelFunc
	done   chan struct{}
	m      clonepack.Manifest
	err    error
}

// newKeeper returns a keeper whose spool the pack reader copies the pack
// into, or nil when this push's pack is not to be kept: keeping is off,
// the commands are invalid, a command updates a ref that exists (its pack
// is incremental, thin in practice), or no spool could be made.
func newKeeper(l Limits, valid bool, cmds []Command) *keeper {
	if l.KeepCloneMinObjects < 0 || !valid {
		return nil
	}
	for _, c := range cmds {
		if !c.isDelete() && !api.IsZeroOID(c.Old) {
			return nil
		}
	}
	s, err := clonepack.NewSpool(l.TempDir)
	if err != nil {
		return nil
	}
	return &keeper{spool: s}
}

// file is the spool the pack reader is to copy the pack into; nil if the
// pack is not to be kept.
func (k *keeper) file() *os.File {
	if k == nil {
		return nil
	}
	return k.spool.File()
}

// start stores the spooled pack in the background when u is worth
// keeping; refs are the push's new values.
func (k *keeper) start(ctx context.Context, p *push, u *unpacked) {
	if k == nil || u == nil || u.res.Objects < p.l.KeepCloneMinObjects {
		return
	}
	refs := map[string]string{}
	for _, c := range p.cmds() {
		if !c.isDelete() {
			refs[c.Name] = c.New
		}
	}
	pk := clonepack.Pack{
		Objects: u.res.Objects, OfsDeltas: u.res.Deltas > u.res.RefDeltas,
		SelfContained: len(u.links) == 0 && u.res.ExternalBases == 0, Checksum: u.res.Checksum,
	}
	if !pk.SelfContained {
		return
	}
	ctx, k.cancel = context.WithCancel(ctx)
	k.done = make(chan struct{})
	go func() {
		defer close(k.done)
		k.m, k.err = k.spool.Store(ctx, p.b, pk, refs)
	}()
}

// publish waits for the pack to be stored and points the repository's
// clone-pack ref at it, from its value before the push (old). It notes
// the outcome in the push's progress.
func (k *keeper) publish(ctx context.Context, p *push, old string) {
	if k == nil || k.done == nil {
		return
	}
	<-k.done
	err := k.err
	if err == nil {
		err = clonepack.Publish(ctx, p.b, p.repo, k.m, old)
	}
	if err != nil {
		p.note("pack not kept for clones: %s", oneLine(err))
		return
	}
	p.note("pack of %d objects kept for clones", k.m.Objects)
}

// close stops a store still running, waits for it and removes the spool.
func (k *keeper) close() {
	if k == nil {
		return
	}
	if k.done != nil {
		k.cancel()
		<-k.done
	}
	k.spool.Close()
}
