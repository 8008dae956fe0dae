// Package clonepack keeps the pack of a push that created a repository and
// serves full clones from it, byte for byte, without per-object work.
//
// A push to an empty repository sends a pack that holds every object its
// refs reach: git had nothing to leave out. receive-pack verifies every
// object of it anyway (datanode/git/receivepack); when the pack turns out to
// be self-contained (no thin-pack base taken from the store, no object named
// that the pack does not hold), the node also stores:
//
//   - the pack's bytes, as one stratum object under their SHA-256 (a large
//     object, replicated, repaired and scrubbed as any other);
//   - a Manifest: a small JSON object, also under its SHA-256, naming the
//     pack and the refs the push set (name -> new value);
//   - the hidden ref Ref (`refs/stratum/clone-pack`), set to the manifest's
//     ID by a ref transaction of its own once the push's transaction has
//     committed.
//
// A later full clone (no haves, no shallow boundary, no filter) whose wants
// are exactly the values of the repository's refs is answered with the kept
// pack when the manifest's refs are exactly the repository's refs (hidden
// refs aside). Then the pack holds exactly the objects those refs reach, no
// more and no fewer, which is what upload-pack would have generated.
//
// # Why this is sound
//
// The manifest states which refs the pack is complete for; the comparison
// with the current refs happens at every clone. A push that moves, adds or
// deletes a ref makes the refs differ, and clones are generated again, as
// they were before the pack was kept. Objects are immutable, so a pack
// that matched once matches whenever the refs come back to the same
// values. The ref transaction that sets Ref only ever names a stored
// manifest (require_objects), and the manifest only names a pack stored at
// quorum before it.
//
// # Caveats
//
//   - Only a push whose commands all create (or delete) refs and whose
//     pack is self-contained is kept: in practice the first push of a
//     repository (git push --mirror to a new name). An
//     incremental push sends only what is new and is not kept; clones after
//     it are generated (and cached per node by datanode/git/packcache).
//   - A kept pack is not deleted when Ref moves on: it stays as an object
//     until deleted through the object API (by its ID, in the manifest).
//   - A client that did not ask for ofs-delta is not sent a pack that has
//     OFS_DELTA entries; its clone is generated.
//   - A pack with unreachable extra objects (a hand-made push) is kept as
//     sent: a clone then receives those objects too, as with git's own
//     pack reuse.
package clonepack

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
)

// Ref is the hidden ref whose value is the ID of the repository's current
// Manifest.
const Ref = "refs/stratum/clone-pack"

// hiddenPrefix is the namespace git never sees: not advertised, not
// pushable.
const hiddenPrefix = "refs/stratum/"

// Hidden reports whether a ref name belongs to stratum, not to Git.
func Hidden(name string) bool { return strings.HasPrefix(name, hiddenPrefix) }

// ErrUnusable: a manifest or pack that cannot serve the clone (not there,
// not matching, damaged). The clone is generated instead.
var ErrUnusable = errors.New("clonepack: no usable kept pack")

// Manifest says what a kept pack is complete for.
type Manifest struct {
	Version int `json:"version"`
	// Pack is the SHA-256 object ID of the pack's bytes; Size their count.
	Pack string `json:"pack"`
	Size int64  `json:"size"`
	// Objects is the pack's entry count, OfsDeltas whether any entry is an
	// OFS_DELTA.
	Objects   int  `json:"objects"`
	OfsDeltas bool `json:"ofs_deltas"`
	// Refs are the refs the pushed pack is complete for: name -> value.
	Refs map[string]string `json:"refs"`
}

// Encode returns the manifest's bytes and their SHA-256 object ID.
func (m Manifest) Encode() ([]byte, api.OID, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, api.OID{}, err
	}
	oid, err := api.Digest(api.SHA256, data)
	return data, oid, err
}

// decode parses a manifest and checks its fields.
func decode(data []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrUnusable, err)
	}
	if m.Version != 1 || m.Size < 32 || m.Objects < 0 || len(m.Refs) == 0 {
		return m, fmt.Errorf("%w: manifest version %d, size %d, %d objects, %d refs", ErrUnusable, m.Version, m.Size, m.Objects, len(m.Refs))
	}
	if _, err := api.ParseOID(m.Pack); err != nil {
		return m, fmt.Errorf("%w: manifest pack %q: %v", ErrUnusable, m.Pack, err)
	}
	return m, nil
}

// Clone is what a full clone asks and what the repository holds.
type Clone struct {
	// Refs are the repository's refs, hidden ones included.
	Refs []backend.Ref
	// Wants are the object IDs the client asked for (duplicates allowed).
	Wants []string
	// OfsDelta is whether the client accepts OFS_DELTA entries.
	OfsDelta bool
}

// manifestID returns Ref's value and whether the wants are exactly the
// values of the visible refs.
func (c Clone) manifestID() (string, bool) {
	values := map[string]bool{}
	id := ""
	for _, r := range c.Refs {
		switch {
		case r.Name == Ref:
			id = r.OID
		case !Hidden(r.Name):
			values[r.OID] = true
		}
	}
	wants := map[string]bool{}
	for _, w := range c.Wants {
		wants[w] = true
	}
	return id, id != "" && maps.Equal(values, wants)
}

// matches reports whether m is complete for exactly the visible refs.
func (m Manifest) matches(refs []backend.Ref) bool {
	n := 0
	for _, r := range refs {
		if Hidden(r.Name) {
			continue
		}
		if v, ok := m.Refs[r.Name]; !ok || v != r.OID {
			return false
		}
		n++
	}
	return n == len(m.Refs)
}

// Open returns the kept pack that answers c, or an error wrapping
// ErrUnusable when there is none to use (then the caller generates the
// pack). The reader yields the pack's bytes and fails at the end if they
// are not the pack the manifest names (the object's SHA-256, the pack's
// own trailing SHA-1, its header's object count): the caller must treat a
// read error as a failed clone. Close it.
func Open(ctx context.Context, b backend.Backend, c Clone) (io.ReadCloser, Manifest, error) {
	id, ok := c.manifestID()
	if !ok {
		return nil, Manifest{}, fmt.Errorf("%w: the wants are not every ref, or no pack is kept", ErrUnusable)
	}
	oid, err := api.ParseOID(id)
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("%w: %s is %q: %v", ErrUnusable, Ref, id, err)
	}
	var data []byte
	var gerr error
	if err := b.Get(ctx, []api.OID{oid}, func(_ api.OID, d []byte, err error) { data, gerr = bytes.Clone(d), err }); err != nil {
		return nil, Manifest{}, fmt.Errorf("%w: reading manifest %s: %v", ErrUnusable, oid, err)
	}
	if gerr != nil {
		return nil, Manifest{}, fmt.Errorf("%w: reading manifest %s: %v", ErrUnusable, oid, gerr)
	}
	m, err := decode(data)
	if err != nil {
		return nil, m, err
	}
	if !m.matches(c.Refs) {
		return nil, m, fmt.Errorf("%w: the refs moved since the pack was kept", ErrUnusable)
	}
	if m.OfsDeltas && !c.OfsDelta {
		return nil, m, fmt.Errorf("%w: the client does not accept ofs-delta", ErrUnusable)
	}
	r, size, err := b.Open(ctx, api.MustParseOID(m.Pack))
	if err != nil {
		return nil, m, fmt.Errorf("%w: opening pack %s: %v", ErrUnusable, m.Pack, err)
	}
	if size != m.Size {
		r.Close()
		return nil, m, fmt.Errorf("%w: pack %s has %d bytes, the manifest says %d", ErrUnusable, m.Pack, size, m.Size)
	}
	return &checked{r: r, m: m, h: sha1.New()}, m, nil
}

// checked passes a pack through and checks, at its end, its header's
// object count and its trailing SHA-1 over everything before it.
type checked struct {
	r io.ReadCloser
	m Manifest
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	head []byte // the first 12 bytes
	tail []byte // the last 20 bytes read so far, not yet hashed
	n    int64
}

func (c *checked) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.take(p[:k])
	if errors.Is(err, io.EOF) {
		if cerr := c.check(); cerr != nil {
			return k, cerr
		}
	}
	return k, err
}

// take hashes what precedes the last 20 bytes seen.
func (c *checked) take(p []byte) {
	c.n += int64(len(p))
	if need := 12 - len(c.head); need > 0 {
		c.head = append(c.head, p[:min(need, len(p))]...)
	}
	c.tail = append(c.tail, p...)
	if over := len(c.tail) - 20; over > 0 {
		c.h.Write(c.tail[:over])
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
}

func (c *checked) check() error {
	switch {
	case c.n != c.m.Size:
		return fmt.Errorf("clonepack: pack %s: read %d bytes, want %d", c.m.Pack, c.n, c.m.Size)
	case !bytes.Equal(c.head[:4], []byte("PACK")) || binary.BigEndian.Uint32(c.head[8:12]) != uint32(c.m.Objects):
		return fmt.Errorf("clonepack: pack %s: header %x does not hold %d objects", c.m.Pack, c.head, c.m.Objects)
	case !bytes.Equal(c.h.Sum(nil), c.tail):
		return fmt.Errorf("clonepack: pack %s: trailing checksum does not match its bytes", c.m.Pack)
	}
	return nil
}

func (c *checked) Close() error { return c.r.Close() }
