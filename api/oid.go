package api

import "github.com/stratum-store/stratum/api/objid"

// The object identity lives in the leaf package objid (no net/http), so
// the storage engine can name and verify objects without the wire
// contract; the wire contract re-exports it under its established names.
type (
	// OID is a parsed, validated object ID (objid.OID).
	OID = objid.OID
	// Algorithm names the hash that produced an OID (objid.Algorithm).
	Algorithm = objid.Algorithm
	// Hasher computes an OID incrementally (objid.Hasher).
	Hasher = objid.Hasher
)

// The supported hash algorithms.
const (
	SHA1   = objid.SHA1
	SHA256 = objid.SHA256
)

// ParseOID validates s: exactly 40 or 64 characters of lowercase hex.
func ParseOID(s string) (OID, error) { return objid.Parse(s) }

// MustParseOID is ParseOID for constants in tests; it panics on bad input.
func MustParseOID(s string) OID { return objid.MustParse(s) }

// NewHasher returns a Hasher for algo.
func NewHasher(algo Algorithm) *Hasher { return objid.NewHasher(algo) }

// Digest returns the OID of data under algo.
func Digest(algo Algorithm, data []byte) (OID, error) { return objid.Digest(algo, data) }

// Check compares a finished Hasher with the OID the caller claimed.
func Check(want OID, h *Hasher) error { return objid.Check(want, h) }

// Verify checks that data hashes to oid.
func Verify(oid OID, data []byte) error { return objid.Verify(oid, data) }
