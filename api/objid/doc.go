// Package objid is the identity of a stored object: its OID (the hex hash
// of its bytes, SHA-256 or Git's collision-detecting SHA-1), the hashing
// that computes and verifies it, and the Stamp that orders the writes and
// deletes of one object.
//
// It is a leaf: the standard library and sha1cd only. The storage engine,
// hinted handoff and every other part that needs to name or verify an
// object import it instead of `api`, the wire contract, so that none of
// them pulls in net/http. `api` re-exports these names (api.OID is
// objid.OID), so code that speaks the wire contract keeps one vocabulary.
//
// # Caveats
//
// An OID is only a name until Verify (or a Hasher's Check) has compared it
// with the bytes: every copy a node accepts, serves or repairs is verified,
// since a replica's disk, a peer or a client may hand over wrong bytes.
package objid
