package backend

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/stratum-store/stratum/api"
)

// Memory is a Backend held in maps, for the protocol packages' tests (a
// fake of this small interface; tests about storage use a real cluster).
// It checks what a cluster checks: objects hash to their IDs, and a ref
// update names a stored object and matches its old value.
type Memory struct {
	mu      sync.Mutex
	objects map[api.OID][]byte
	refs    map[string]map[string]string // repo -> name -> oid
	// Puts counts Put calls, so a test can tell whether a push stored
	// anything.
	Puts int
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{objects: map[api.OID][]byte{}, refs: map[string]map[string]string{}}
}

// Refs implements Backend.
func (m *Memory) Refs(_ context.Context, repo string) ([]Ref, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Ref
	for name, oid := range m.refs[repo] {
		out = append(out, Ref{Name: name, OID: oid})
	}
	slices.SortFunc(out, func(a, b Ref) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Get implements Backend.
func (m *Memory) Get(_ context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	for _, oid := range oids {
		m.mu.Lock()
		data, ok := m.objects[oid]
		m.mu.Unlock()
		if !ok {
			fn(oid, nil, fmt.Errorf("%w: %s", ErrNotFound, oid))
			continue
		}
		fn(oid, data, nil)
	}
	return nil
}

// Has implements Backend.
func (m *Memory) Has(_ context.Context, oids []api.OID) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]bool, len(oids))
	for i, oid := range oids {
		_, out[i] = m.objects[oid]
	}
	return out, nil
}

// Put implements Backend; it refuses an object that does not hash to its
// ID, as a data node does.
func (m *Memory) Put(_ context.Context, objs []Object) error {
	for _, o := range objs {
		if err := api.Verify(o.OID, o.Data); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Puts++
	for _, o := range objs {
		m.objects[o.OID] = slices.Clone(o.Data)
	}
	return nil
}

// PutStream implements Backend by reading r whole.
func (m *Memory) PutStream(ctx context.Context, oid api.OID, r io.Reader, size int64) error {
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("%w: %s: %d bytes, said %d", api.ErrBadRequest, oid, len(data), size)
	}
	return m.Put(ctx, []Object{{OID: oid, Data: data}})
}

// Open implements Backend.
func (m *Memory) Open(_ context.Context, oid api.OID) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	data, ok := m.objects[oid]
	m.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, oid)
	}
	return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
}

// Delete removes an object, for tests of what a missing object does.
func (m *Memory) Delete(oid api.OID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, oid)
}

// Update implements Backend: all updates or none.
func (m *Memory) Update(_ context.Context, repo string, updates []Update) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	refs := m.refs[repo]
	for _, u := range updates {
		cur, ok := refs[u.Name]
		if (api.IsZeroOID(u.Old) && ok) || (!api.IsZeroOID(u.Old) && cur != u.Old) {
			return fmt.Errorf("%w: %s is %q, not %s", ErrConflict, u.Name, cur, u.Old)
		}
		if api.IsZeroOID(u.New) {
			continue
		}
		oid, err := api.ParseOID(u.New)
		if err != nil {
			return err
		}
		if _, ok := m.objects[oid]; !ok {
			return fmt.Errorf("%w: %s", api.ErrMissingObject, u.New)
		}
	}
	if refs == nil {
		refs = map[string]string{}
		m.refs[repo] = refs
	}
	for _, u := range updates {
		if api.IsZeroOID(u.New) {
			delete(refs, u.Name)
		} else {
			refs[u.Name] = u.New
		}
	}
	return nil
}

// Object returns a stored object's bytes, for tests.
func (m *Memory) Object(oid api.OID) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.objects[oid]
	return data, ok
}
