package receivepack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pack"
)

// unpacked is a verified pack whose objects are being stored: full
// batches go to the Backend as the pack is read (storing overlaps parsing,
// on two cores instead of one); the last, partial batch waits until the
// push is known to be connected (store).
type unpacked struct {
	put   *putter // nil: verify only, store nothing (the commands are invalid)
	batch []backend.Object
	size  int64 // bytes in batch
	lim   Limits
	have  map[object.ID]struct{}
	// links are objects the pack's objects name and the pack does not
	// (yet) hold: what must already be stored.
	links map[object.ID]struct{}
	hdr   []byte
	res   pack.Result
}

// unpack reads the pack from r, verifies every object (ID, fsck checks)
// and, if store, stores each full batch of verified objects as it fills.
// The pack reader copies the pack into spool (pack.Config.Spool) when it
// is not nil, else into a temporary file of its own. The returned error
// is the reason sent as `unpack <reason>` (with it, u says only how many
// objects were stored). Without an error, the caller must call close.
func unpack(ctx context.Context, r io.Reader, b backend.Backend, l Limits, store bool, spool *os.File) (*unpacked, error) {
	u := &unpacked{lim: l, have: map[object.ID]struct{}{}, links: map[object.ID]struct{}{}}
	if store {
		u.put = newPutter(ctx, b, l.PutConcurrency)
	}
	cfg := pack.Config{
		MaxObjectSize: l.MaxObjectSize, MaxObjects: l.MaxObjects, CacheBytes: l.CacheBytes,
		TempDir: l.TempDir, Spool: spool, Base: baseSource(ctx, b),
	}
	lr := &limitReader{r: r, max: l.MaxPackBytes}
	var err error
	u.res, err = pack.Read(ctx, lr, cfg, u.add)
	if err != nil {
		if perr := u.putErr(); perr != nil {
			err = perr // the Put that failed is the cause, not how the read stopped
		}
		u.close()
		return u, err
	}
	return u, nil
}

// stored is how many objects the push has stored so far.
func (u *unpacked) stored() int {
	if u == nil || u.put == nil {
		return 0
	}
	n, _ := u.put.progress()
	return n
}

// putErr is the first failed Put's error, if any.
func (u *unpacked) putErr() error {
	if u.put == nil {
		return nil
	}
	_, err := u.put.progress()
	return err
}

// close stops the Puts still running (a refused push) and waits for them.
func (u *unpacked) close() {
	if u.put != nil {
		u.put.cancel()
		u.put.wait()
	}
}

// add checks one object as `git fsck --strict` does, notes what it names,
// and adds its canonical form to the batch, storing the batch when full.
func (u *unpacked) add(o pack.Object) error {
	if err := object.Check(o.Type, o.Body, object.Options{Strict: true}); err != nil {
		return fmt.Errorf("object %s: %w", o.ID, err)
	}
	if err := u.addLinks(o); err != nil {
		return fmt.Errorf("object %s: %w", o.ID, err)
	}
	u.have[o.ID] = struct{}{}
	delete(u.links, o.ID)
	if u.put == nil {
		return nil
	}
	u.hdr = object.AppendHeader(u.hdr[:0], o.Type, int64(len(o.Body)))
	data := make([]byte, 0, len(u.hdr)+len(o.Body))
	data = append(append(data, u.hdr...), o.Body...)
	u.batch = append(u.batch, backend.Object{OID: toOID(o.ID), Data: data})
	if u.size += int64(len(data)); len(u.batch) >= u.lim.BatchObjects || u.size >= u.lim.BatchBytes {
		return u.flush()
	}
	return nil
}

// flush hands the batch to the putter, waiting for a free slot (so a pack
// is read no faster than it is stored); it fails once a Put has failed.
func (u *unpacked) flush() error {
	if len(u.batch) > 0 {
		u.put.put(u.batch)
	}
	u.batch, u.size = nil, 0
	return u.putErr()
}

// addLinks notes the objects o names: a commit's tree and parents, a tree's
// entries except gitlinks (commits of another repository), a tag's target.
func (u *unpacked) addLinks(o pack.Object) error {
	switch o.Type {
	case object.Commit:
		c, err := object.ParseCommit(o.Body)
		if err != nil {
			return err
		}
		u.link(c.Tree)
		for _, p := range c.Parents {
			u.link(p)
		}
	case object.Tree:
		return object.WalkTree(o.Body, func(mode uint32, _ []byte, id object.ID) {
			if mode != object.ModeSubmodule {
				u.link(id)
			}
		})
	case object.Tag:
		t, err := object.ParseTag(o.Body)
		if err != nil {
			return err
		}
		u.link(t.Object)
	}
	return nil
}

func (u *unpacked) link(id object.ID) {
	if _, ok := u.have[id]; !ok {
		u.links[id] = struct{}{}
	}
}

// baseSource reads thin-pack bases from the backend.
func baseSource(ctx context.Context, b backend.Backend) pack.BaseSource {
	return func(id object.ID) (object.Type, []byte, error) {
		oid := toOID(id)
		var data []byte
		var gerr error
		err := b.Get(ctx, []api.OID{oid}, func(_ api.OID, d []byte, err error) {
			data, gerr = slices.Clone(d), err
		})
		switch {
		case err != nil:
			return 0, nil, fmt.Errorf("reading delta base %s: %w", id, err)
		case errors.Is(gerr, backend.ErrNotFound):
			return 0, nil, fmt.Errorf("%w: %s", pack.ErrMissingBase, id)
		case gerr != nil:
			return 0, nil, fmt.Errorf("reading delta base %s: %w", id, gerr)
		}
		t, body, err := object.ParseCanonical(data)
		if err != nil {
			return 0, nil, fmt.Errorf("delta base %s: %w", id, err)
		}
		return t, body, nil
	}
}

// toOID converts a pack ID, always valid SHA-1 hex, to the API's OID.
func toOID(id object.ID) api.OID { return api.MustParseOID(id.String()) }

// limitReader fails with ErrPackTooLarge once more than max bytes are read.
type limitReader struct {
	r      io.Reader
	n, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrPackTooLarge, l.max)
	}
	if rest := l.max - l.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	if l.n > l.max {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrPackTooLarge, l.max)
	}
	return k, err
}
