package receivepack

import (
	"bufio"
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

// unpacked is a verified pack: its objects wait in a temporary file, in
// canonical form, until the push is known to be connected; then store puts
// them.
type unpacked struct {
	spool *os.File
	w     *bufio.Writer
	objs  []spooled // in spool order
	have  map[object.ID]struct{}
	// links are objects the pack's objects name and the pack does not
	// (yet) hold: what must already be stored.
	links map[object.ID]struct{}
	hdr   []byte
	res   pack.Result
}

// spooled is one object of the spool file.
type spooled struct {
	id   object.ID
	size int64 // of its canonical form
}

// unpack reads the pack from r, verifies every object (ID, fsck checks),
// and keeps the objects in a temporary file. The returned error is the
// reason sent as `unpack <reason>`. The caller must call close.
func unpack(ctx context.Context, r io.Reader, b backend.Backend, l Limits) (*unpacked, error) {
	f, err := os.CreateTemp(l.TempDir, "stratum-receivepack-*")
	if err != nil {
		return nil, fmt.Errorf("temporary file: %w", err)
	}
	u := &unpacked{spool: f, w: bufio.NewWriterSize(f, 256<<10),
		have: map[object.ID]struct{}{}, links: map[object.ID]struct{}{}}
	cfg := pack.Config{
		MaxObjectSize: l.MaxObjectSize, MaxObjects: l.MaxObjects, CacheBytes: l.CacheBytes,
		TempDir: l.TempDir, Base: baseSource(ctx, b),
	}
	lr := &limitReader{r: r, max: l.MaxPackBytes}
	u.res, err = pack.Read(ctx, lr, cfg, u.add)
	if err == nil {
		err = u.w.Flush()
	}
	if err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

// close removes the temporary file.
func (u *unpacked) close() {
	u.spool.Close()
	os.Remove(u.spool.Name())
}

// add checks one object as `git fsck --strict` does, notes what it names,
// and spools its canonical form.
func (u *unpacked) add(o pack.Object) error {
	if err := object.Check(o.Type, o.Body, object.Options{Strict: true}); err != nil {
		return fmt.Errorf("object %s: %w", o.ID, err)
	}
	if err := u.addLinks(o); err != nil {
		return fmt.Errorf("object %s: %w", o.ID, err)
	}
	u.have[o.ID] = struct{}{}
	delete(u.links, o.ID)
	u.hdr = object.AppendHeader(u.hdr[:0], o.Type, int64(len(o.Body)))
	u.w.Write(u.hdr)
	if _, err := u.w.Write(o.Body); err != nil {
		return fmt.Errorf("temporary file: %w", err)
	}
	u.objs = append(u.objs, spooled{id: o.ID, size: int64(len(u.hdr) + len(o.Body))})
	return nil
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
		es, err := object.ParseTree(o.Body)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Mode != object.ModeSubmodule {
				u.link(e.ID)
			}
		}
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
