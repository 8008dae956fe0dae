// Package api is stratum's wire contract: the routes, headers and JSON
// documents that data nodes, the Go client and the CLI exchange, the parsing
// and verification of object IDs, and the one table that maps sentinel errors
// to HTTP statuses and error codes.
//
// It imports only the standard library and a hash library, so every other
// package can depend on it.
//
// # Object IDs
//
// An OID is the lowercase hex digest of an object's exact bytes: 64
// characters for SHA-256, 40 for SHA-1. A Git object in canonical form
// ("<type> <size>\x00<content>") is therefore stored under its Git object ID.
// SHA-1 is computed with collision detection (the sha1dc algorithm Git uses),
// so a crafted colliding input is refused rather than stored.
//
//	oid, err := api.ParseOID("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
//	err = api.Verify(oid, body) // nil, ErrDigestMismatch or ErrCollision
//
// # Caveats
//
// ParseOID is strict on purpose: upper-case hex, a trailing newline or a path
// component are all invalid. fasthttp normalises request paths before a
// handler sees them, so an OID that is not rejected here could reach a file
// name.
package api
