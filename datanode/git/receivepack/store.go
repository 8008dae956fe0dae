package receivepack

import (
	"bufio"
	"context"
	"fmt"
	"io"

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

// store puts the spooled objects with Backend.Put in batches of at most
// Limits.BatchObjects objects and BatchBytes bytes (one object may exceed
// it alone). It returns how many it stored.
func (u *unpacked) store(ctx context.Context, b backend.Backend, l Limits) (int, error) {
	if _, err := u.spool.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("temporary file: %w", err)
	}
	r := bufio.NewReaderSize(u.spool, 256<<10)
	var batch []backend.Object
	var size int64
	stored := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := b.Put(ctx, batch); err != nil {
			return fmt.Errorf("storing objects: %w", err)
		}
		stored += len(batch)
		batch, size = batch[:0], 0
		return nil
	}
	for _, s := range u.objs {
		data := make([]byte, s.size)
		if _, err := io.ReadFull(r, data); err != nil {
			return stored, fmt.Errorf("temporary file: %w", err)
		}
		batch = append(batch, backend.Object{OID: toOID(s.id), Data: data})
		if size += s.size; len(batch) >= l.BatchObjects || size >= l.BatchBytes {
			if err := flush(); err != nil {
				return stored, err
			}
		}
	}
	return stored, flush()
}
