package uploadpack

import (
	"context"
	"fmt"
	"slices"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// batchSize is how many object IDs go into one Backend.Get call. A batch's
// objects are the only object bodies held at once (Get hands each to a
// callback that must not keep it), so it also bounds memory: 256 objects of
// at most the store's object size limit.
const batchSize = 256

// commitInfo is what the walks keep per commit: about 100 bytes.
type commitInfo struct {
	tree    object.ID
	parents []object.ID
	time    int64
}

// keepBytes bounds the bodies one fetch keeps from its walk for its pack
// (objects.keep): the commits and trees a walk reads are most of what a
// clone's pack holds besides blobs, and keeping them saves reading each a
// second time. 32 MiB holds the commits and trees of a repository of about
// 100,000 objects (docs/git.md); past it, bodies are read again.
const keepBytes = 32 << 20

// objects reads a repository's objects through a Backend in batches and
// caches the commits it has parsed (the walks visit them several times).
// It also keeps, up to keepBytes, the bodies of the commits and trees the
// walks read, for the pack writer to take instead of reading them again.
type objects struct {
	ctx      context.Context
	b        backend.Backend
	commits  map[object.ID]*commitInfo
	kept     map[object.ID]typedBody
	keptSize int64
}

func newObjects(ctx context.Context, b backend.Backend) *objects {
	return &objects{ctx: ctx, b: b, commits: map[object.ID]*commitInfo{}, kept: map[object.ID]typedBody{}}
}

// keep copies a body the walk read, if keepBytes allows.
func (o *objects) keep(id object.ID, t object.Type, body []byte) {
	if _, ok := o.kept[id]; ok || o.keptSize+int64(len(body)) > keepBytes {
		return
	}
	o.kept[id] = typedBody{t, slices.Clone(body)}
	o.keptSize += int64(len(body))
}

// take returns a kept body and forgets it: each is sent once.
func (o *objects) take(id object.ID) (typedBody, bool) {
	b, ok := o.kept[id]
	if ok {
		delete(o.kept, id)
		o.keptSize -= int64(len(b.body))
	}
	return b, ok
}

// read calls fn with the type and body of each of ids, batchSize IDs per
// Backend.Get, in the order Get answers. A missing object is an error
// wrapping ErrMissingObject; fn's error stops the read. body is valid only
// during the call.
func (o *objects) read(ids []object.ID, fn func(id object.ID, t object.Type, body []byte) error) error {
	oids := make([]api.OID, 0, min(len(ids), batchSize))
	for start := 0; start < len(ids); start += batchSize {
		if err := o.ctx.Err(); err != nil {
			return fmt.Errorf("uploadpack: %w", err)
		}
		chunk := ids[start:min(start+batchSize, len(ids))]
		oids = oids[:0]
		for _, id := range chunk {
			oids = append(oids, api.MustParseOID(id.String()))
		}
		if err := o.get(oids, fn); err != nil {
			return err
		}
	}
	return nil
}

func (o *objects) get(oids []api.OID, fn func(object.ID, object.Type, []byte) error) error {
	var first error
	err := o.b.Get(o.ctx, oids, func(oid api.OID, data []byte, err error) {
		if first != nil {
			return
		}
		id, perr := object.ParseID(oid.String())
		switch {
		case perr != nil:
			first = fmt.Errorf("uploadpack: backend returned object %q: %w", oid, perr)
		case err != nil:
			first = missing(id, err)
		default:
			first = o.decode(id, data, fn)
		}
	})
	if err != nil {
		return fmt.Errorf("uploadpack: reading objects: %w", err)
	}
	return first
}

func (o *objects) decode(id object.ID, data []byte, fn func(object.ID, object.Type, []byte) error) error {
	t, body, err := object.ParseCanonical(data)
	if err != nil {
		return fmt.Errorf("uploadpack: stored object %s: %w", id, err)
	}
	return fn(id, t, body)
}

// loadCommits parses and caches those of ids not cached yet. An ID that is
// not a commit is an error: callers pass only parents and peeled commits.
func (o *objects) loadCommits(ids []object.ID) error {
	var todo []object.ID
	for _, id := range ids {
		if _, ok := o.commits[id]; !ok {
			todo = append(todo, id)
		}
	}
	return o.read(todo, func(id object.ID, t object.Type, body []byte) error {
		if t != object.Commit {
			return fmt.Errorf("uploadpack: %s is a %s, expected a commit", id, t)
		}
		o.keep(id, t, body)
		return o.addCommit(id, body)
	})
}

func (o *objects) addCommit(id object.ID, body []byte) error {
	c, err := object.ParseCommit(body)
	if err != nil {
		return fmt.Errorf("uploadpack: commit %s: %w", id, err)
	}
	o.commits[id] = &commitInfo{tree: c.Tree, parents: c.Parents, time: c.Committer.When}
	return nil
}

// peeled is an object with its type, and for a tag the end of its chain.
type peeled struct {
	typ    object.Type
	target object.ID   // the first non-tag object (id itself if not a tag)
	ttype  object.Type // its type
	chain  []object.ID // the tags from id to target, id first; nil if not a tag
}

// peel reads ids and follows tags to their first non-tag object, one
// batch per level of tag nesting. Commits met on the way are cached.
func (o *objects) peel(ids []object.ID) (map[object.ID]*peeled, error) {
	out := make(map[object.ID]*peeled, len(ids))
	next := map[object.ID][]object.ID{} // object to read -> the ids whose chain reaches it
	for _, id := range ids {
		next[id] = append(next[id], id)
	}
	for depth := 0; len(next) > 0; depth++ {
		if depth > 100 {
			return nil, fmt.Errorf("uploadpack: tag chain longer than 100")
		}
		cur := next
		next = map[object.ID][]object.ID{}
		err := o.read(keys(cur), func(id object.ID, t object.Type, body []byte) error {
			return o.peelStep(id, t, body, cur[id], out, next)
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (o *objects) peelStep(id object.ID, t object.Type, body []byte, origins []object.ID, out map[object.ID]*peeled, next map[object.ID][]object.ID) error {
	for _, origin := range origins {
		p := out[origin]
		if p == nil {
			p = &peeled{typ: t}
			out[origin] = p
		}
		p.target, p.ttype = id, t
		if t == object.Tag {
			p.chain = append(p.chain, id)
		}
	}
	switch t {
	case object.Tag:
		tag, err := object.ParseTag(body)
		if err != nil {
			return fmt.Errorf("uploadpack: tag %s: %w", id, err)
		}
		next[tag.Object] = append(next[tag.Object], origins...)
	case object.Commit:
		return o.addCommit(id, body)
	}
	return nil
}

func keys[V any](m map[object.ID]V) []object.ID {
	out := make([]object.ID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
