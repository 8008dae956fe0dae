package pack

import (
	"errors"
	"fmt"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// resolveDeltas resolves every delta once its base is known: first the
// dependents of the pack's whole objects (transitively), then, for REF
// deltas whose base is not in the pack, bases from Config.Base. A delta
// left unresolved after that is part of a cycle.
func (rd *reader) resolveDeltas() error {
	for i := range rd.entries {
		if rd.entries[i].kind < typeOfsDelta {
			if err := rd.resolveDependents(i); err != nil {
				return err
			}
		}
	}
	for i := range rd.entries {
		e := &rd.entries[i]
		if e.resolved || e.kind != typeRefDelta {
			continue
		}
		if _, inPack := rd.byID[e.refBase]; inPack {
			continue
		}
		if err := rd.external(e.refBase); err != nil {
			return fmt.Errorf("%w: entry at %d", err, e.off)
		}
	}
	for i := range rd.entries {
		if !rd.entries[i].resolved {
			return fmt.Errorf("%w: entry at %d: delta base cycle", ErrBadDelta, rd.entries[i].off)
		}
	}
	return nil
}

// external fetches a thin-pack base and resolves what waits for it.
func (rd *reader) external(id object.ID) error {
	if rd.cfg.Base == nil {
		return fmt.Errorf("%w: %s (thin pack, no base source)", ErrMissingBase, id)
	}
	t, body, err := rd.cfg.Base(id)
	if err != nil {
		return err
	}
	if got, err := object.Hash(t, body); err != nil || got != id {
		return fmt.Errorf("%w: base source returned %s for %s (%v)", ErrMissingBase, got, id, err)
	}
	k := -1 - len(rd.ext)
	rd.ext = append(rd.ext, t)
	rd.extID = append(rd.extID, id)
	rd.res.ExternalBases++
	rd.cache.add(k, body)
	return rd.resolveChildren(k, id, t, 0)
}

// resolveDependents resolves, depth first, every delta built on entry i.
func (rd *reader) resolveDependents(i int) error {
	e := rd.entries[i]
	return rd.resolveChildren(i, e.id, e.otype, int(e.depth))
}

func (rd *reader) resolveChildren(base int, id object.ID, t object.Type, depth int) error {
	kids := append(rd.ofsWait[base], rd.refWait[id]...)
	delete(rd.ofsWait, base)
	delete(rd.refWait, id)
	if len(kids) > 0 {
		b, err := rd.body(base) // keep the base at hand for its children
		if err != nil {
			return err
		}
		rd.cache.add(base, b)
	}
	for _, k := range kids {
		if err := rd.ctx.Err(); err != nil {
			return err
		}
		c := &rd.entries[k]
		if c.resolved {
			continue
		}
		if depth+1 > rd.cfg.MaxChainDepth {
			return fmt.Errorf("%w: entry at %d: chain longer than %d", ErrBadDelta, c.off, rd.cfg.MaxChainDepth)
		}
		c.base, c.otype, c.depth = base, t, int32(depth+1)
		body, err := rd.body(k)
		if err != nil {
			return err
		}
		if err := rd.resolved(k, body); err != nil {
			return err
		}
		if err := rd.resolveDependents(k); err != nil {
			return err
		}
	}
	return nil
}

// body returns the body of a resolved entry (or of one whose base is
// resolved): from the cache, or rebuilt from the stored pack.
func (rd *reader) body(i int) ([]byte, error) {
	if b, ok := rd.cache.get(i); ok {
		return b, nil
	}
	if i < 0 {
		t, b, err := rd.cfg.Base(rd.extID[-1-i])
		if err == nil && t != rd.ext[-1-i] {
			err = fmt.Errorf("%w: base source changed the type of %s", ErrMissingBase, rd.extID[-1-i])
		}
		return b, err
	}
	e := rd.entries[i]
	if e.kind < typeOfsDelta {
		b, err := rd.inflate(rd.spoolReader(e.dataOff), e.size, []byte{})
		return b, spoolErr(err, e.off)
	}
	base, err := rd.body(e.base)
	if err != nil {
		return nil, err
	}
	delta, err := rd.inflate(rd.spoolReader(e.dataOff), e.size, []byte{})
	if err != nil {
		return nil, spoolErr(err, e.off)
	}
	out, err := ApplyDelta(nil, base, delta, rd.cfg.MaxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("%w: entry at %d", err, e.off)
	}
	return out, nil
}

// spoolErr reports a failure to re-read what was read once already.
func spoolErr(err error, off int64) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrTruncated) {
		return fmt.Errorf("pack: re-reading entry at %d from the temporary file: %w", off, err)
	}
	return fmt.Errorf("%w: entry at %d", err, off)
}
