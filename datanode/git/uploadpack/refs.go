package uploadpack

import (
	"fmt"
	"strings"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
	"github.com/stratum-store/stratum/datanode/git/object"
)

// ref is one ref of the repository, with its peeled target when it is an
// annotated tag.
type ref struct {
	name   string
	id     object.ID
	peeled *object.ID // the first non-tag object of the tag's chain
}

// refSet is a repository's refs as read at the start of a request. HEAD is
// not stored in stratum (refs have no symrefs); headName is the branch the
// package advertises HEAD as (see chooseHead), "" when there is no branch.
type refSet struct {
	refs     []ref // sorted by name, as Backend.Refs returns them
	headName string
	headID   object.ID
	tags     map[object.ID]*peeled // peeled refs/tags/* targets, when asked for
	raw      []backend.Ref         // as read, hidden refs included (clonepack)
}

// loadRefs reads repo's refs. With peel it also reads the objects refs/tags/*
// point at (in batches) to peel annotated tags: Git advertises a tag's
// target next to the tag, and include-tag needs it.
func loadRefs(o *objects, repo string, peel bool) (*refSet, error) {
	raw, err := o.b.Refs(o.ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("uploadpack: reading refs of %s: %w", repo, err)
	}
	rs := &refSet{refs: make([]ref, 0, len(raw)), raw: raw}
	for _, r := range raw {
		if clonepack.Hidden(r.Name) {
			continue
		}
		id, err := object.ParseID(r.OID)
		if err != nil {
			return nil, fmt.Errorf("uploadpack: ref %s of %s points at %q, not a SHA-1 object ID", r.Name, repo, r.OID)
		}
		rs.refs = append(rs.refs, ref{name: r.Name, id: id})
	}
	rs.headName = chooseHead(rs.refs)
	for _, r := range rs.refs {
		if r.name == rs.headName {
			rs.headID = r.id
		}
	}
	if peel {
		return rs, rs.peelTags(o)
	}
	return rs, nil
}

func (rs *refSet) peelTags(o *objects) error {
	var ids []object.ID
	for _, r := range rs.refs {
		if strings.HasPrefix(r.name, "refs/tags/") {
			ids = append(ids, r.id)
		}
	}
	tags, err := o.peel(ids)
	if err != nil {
		return err
	}
	rs.tags = tags
	for i := range rs.refs {
		if p := tags[rs.refs[i].id]; p != nil && p.typ == object.Tag && strings.HasPrefix(rs.refs[i].name, "refs/tags/") {
			t := p.target
			rs.refs[i].peeled = &t
		}
	}
	return nil
}

// chooseHead is the branch HEAD stands for: refs/heads/main if it exists,
// else refs/heads/master, else the first branch by name, else none.
func chooseHead(refs []ref) string {
	for _, want := range []string{"refs/heads/main", "refs/heads/master"} {
		for _, r := range refs {
			if r.name == want {
				return want
			}
		}
	}
	for _, r := range refs {
		if strings.HasPrefix(r.name, "refs/heads/") {
			return r.name
		}
	}
	return ""
}

// tips is the set of objects a client may want without a reachability
// check: every ref's value.
func (rs *refSet) tips() map[object.ID]bool {
	m := make(map[object.ID]bool, len(rs.refs))
	for _, r := range rs.refs {
		m[r.id] = true
	}
	return m
}

// resolve finds a ref by a name as a user writes it (deepen-not): the
// full name, or the name under refs/, refs/tags/, refs/heads/,
// refs/remotes/, in Git's order of precedence.
func (rs *refSet) resolve(name string) (object.ID, bool) {
	for _, pfx := range []string{"", "refs/", "refs/tags/", "refs/heads/", "refs/remotes/"} {
		for _, r := range rs.refs {
			if r.name == pfx+name {
				return r.id, true
			}
		}
	}
	if name == "HEAD" && rs.headName != "" {
		return rs.headID, true
	}
	return object.ID{}, false
}
