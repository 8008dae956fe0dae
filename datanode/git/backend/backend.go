// Package backend is what the Git protocol packages (uploadpack,
// receivepack, smarthttp) need from a stratum cluster, and nothing more:
// objects by their Git object ID, in canonical form (`type size\0body`, so
// the object API, repair and scrub work on Git data unchanged), and a
// repository's refs, changed only by compare-and-swap transactions.
//
// The protocol packages declare no storage of their own. A data node gives
// them a Client (an adapter over the object and ref APIs, carrying the
// caller's credentials, so every read and write is authorised exactly as a
// direct API call would be); their tests give them Memory.
//
// # Caveats
//
// Put returns only once every object is stored durably at quorum: a ref
// transaction that follows may point at them. Objects are immutable and
// content-addressed, so putting one twice is harmless.
package backend

import (
	"context"
	"io"

	"github.com/stratum-store/stratum/api"
)

// Object is one Git object in canonical form: Data is `type size\0body`
// and OID is its SHA-1.
type Object struct {
	OID  api.OID
	Data []byte
}

// Update is one ref change of a push: Name from Old to New; an all-zero Old
// means the ref must not exist, an all-zero New deletes it.
type Update = api.RefUpdate

// Ref is a ref name and the object ID it points at.
type Ref = api.Ref

// Errors a Backend returns (wrapped), so that protocol code can answer in
// Git's own terms. Anything else is an internal error.
var (
	// ErrNotFound: an object that is not stored (or deleted).
	ErrNotFound = api.ErrNotFound
	// ErrConflict: a transaction whose old values did not match.
	ErrConflict = api.ErrRefConflict
	// ErrForbidden: the caller's credentials do not allow the call.
	ErrForbidden = api.ErrForbidden
)

// Backend is a repository store. Every method takes the caller's context
// (its deadline bounds the call) and may be called concurrently.
type Backend interface {
	// Refs returns every ref of repo, sorted by name. A repository that
	// was never pushed to has no refs (and no error).
	Refs(ctx context.Context, repo string) ([]Ref, error)
	// Get calls fn for each oid, in any order, with the object's
	// canonical bytes or an error wrapping ErrNotFound. It returns an
	// error only when it could not ask at all. fn must not keep data.
	Get(ctx context.Context, oids []api.OID, fn func(oid api.OID, data []byte, err error)) error
	// Has reports, for each oid, whether it is stored at quorum.
	Has(ctx context.Context, oids []api.OID) ([]bool, error)
	// Put stores objs durably at quorum, or fails. The caller has
	// verified each object's ID.
	Put(ctx context.Context, objs []Object) error
	// PutStream stores one object of any size, read from r (size bytes
	// whose hash is oid, SHA-1 or SHA-256), durably at quorum, or fails.
	PutStream(ctx context.Context, oid api.OID, r io.Reader, size int64) error
	// Open streams one object of any size and returns its size. The
	// reader fails at the end if the bytes do not hash to oid. An object
	// not stored fails with an error wrapping ErrNotFound.
	Open(ctx context.Context, oid api.OID) (io.ReadCloser, int64, error)
	// Update applies updates to repo's refs in one atomic transaction:
	// all or none. A mismatched old value fails with an error wrapping
	// ErrConflict; an update naming an object not stored at quorum fails
	// with api.ErrMissingObject.
	Update(ctx context.Context, repo string, updates []Update) error
}
