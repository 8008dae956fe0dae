package receivepack

import (
	"context"
	"errors"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
)

// update applies every command in one Backend.Update transaction. A delete
// of a ref that does not exist is left out of it and reported ok, as Git
// does; if the transaction fails it shares the failure (nothing changed).
// It returns the refs as read before the transaction, and whether the
// transaction committed.
func (p *push) update(ctx context.Context) (map[string]string, bool) {
	cur, err := p.current(ctx)
	if err != nil {
		p.failAll("failed to read refs: " + oneLine(err))
		return nil, false
	}
	var updates []backend.Update
	var absent []int
	for i, c := range p.cmds() {
		if _, ok := cur[c.Name]; !ok && c.isDelete() {
			p.note("deleting a non-existent ref %s", c.Name)
			absent = append(absent, i)
			continue
		}
		updates = append(updates, backend.Update{Name: c.Name, Old: c.Old, New: c.New})
	}
	if len(updates) > 0 {
		if err := p.b.Update(ctx, p.repo, updates); err != nil {
			p.refused(ctx, err)
			return cur, false
		}
	}
	p.failAll(statusOK)
	return cur, true
}

// current returns repo's refs by name.
func (p *push) current(ctx context.Context) (map[string]string, error) {
	refs, err := p.b.Refs(ctx, p.repo)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(refs))
	for _, r := range refs {
		m[r.Name] = r.OID
	}
	return m, nil
}

// refused gives each command its reason after a failed transaction: on a
// conflict, the refs whose old value is not the current one are told to
// fetch first and the others that the push failed as a whole.
func (p *push) refused(ctx context.Context, err error) {
	switch {
	case errors.Is(err, backend.ErrConflict):
		p.stale(ctx)
	case errors.Is(err, api.ErrMissingObject):
		p.failAll(statusMissing)
	case errors.Is(err, backend.ErrForbidden):
		p.failAll("permission denied")
	default:
		p.failAll("failed to update refs: " + oneLine(err))
	}
}

// stale marks the commands whose old value no longer holds.
func (p *push) stale(ctx context.Context) {
	cur, err := p.current(ctx)
	if err != nil {
		p.failAll(statusStale)
		return
	}
	found := false
	for i, c := range p.cmds() {
		now, ok := cur[c.Name]
		if api.IsZeroOID(c.Old) && !ok || now == c.Old {
			continue
		}
		p.res.Commands[i].Status = statusStale
		found = true
	}
	if !found { // moved back since: the client still has to look again
		p.failAll(statusStale)
	}
	p.failAll(statusAtomicFailure)
}
