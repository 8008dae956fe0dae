package objid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/pjbgf/sha1cd"
)

// Algorithm names the hash that produced an OID.
type Algorithm uint8

// The supported hash algorithms. The zero value is invalid.
const (
	SHA1   Algorithm = 1
	SHA256 Algorithm = 2
)

// String returns "sha1" or "sha256".
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	}
	return "unknown"
}

// HexLen is the length of an OID of this algorithm in hex characters.
func (a Algorithm) HexLen() int {
	switch a {
	case SHA1:
		return 40
	case SHA256:
		return 64
	}
	return 0
}

// OID is a parsed, validated object ID. The zero OID is invalid.
type OID struct {
	hex string
}

// Parse validates s: exactly 40 or 64 characters of lowercase hex.
// Any other input yields an error wrapping ErrInvalid.
func Parse(s string) (OID, error) {
	if len(s) != 40 && len(s) != 64 {
		return OID{}, fmt.Errorf("%w: %d characters, want 40 (sha1) or 64 (sha256)", ErrInvalid, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return OID{}, fmt.Errorf("%w: character %d is %q, want lowercase hex", ErrInvalid, i, c)
		}
	}
	return OID{hex: s}, nil
}

// MustParse is Parse for constants in tests and examples; it panics on
// invalid input.
func MustParse(s string) OID {
	o, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return o
}

// String returns the lowercase hex form.
func (o OID) String() string { return o.hex }

// IsZero reports whether o is the zero (invalid) OID.
func (o OID) IsZero() bool { return o.hex == "" }

// Algorithm tells which hash produced o.
func (o OID) Algorithm() Algorithm {
	if len(o.hex) == 40 {
		return SHA1
	}
	if len(o.hex) == 64 {
		return SHA256
	}
	return 0
}

// Hasher computes an OID incrementally: write the object's bytes to it, then
// call Sum. For SHA-1 it detects collision attacks.
type Hasher struct {
	algo Algorithm
	h    hash.Hash
}

// NewHasher returns a Hasher for algo.
func NewHasher(algo Algorithm) *Hasher {
	if algo == SHA1 {
		return &Hasher{algo: algo, h: sha1cd.New()}
	}
	return &Hasher{algo: SHA256, h: sha256.New()}
}

// Write adds p to the digest. It never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the OID of everything written so far, or ErrCollision when
// SHA-1 collision detection fired.
func (h *Hasher) Sum() (OID, error) {
	if h.algo == SHA1 {
		sum, collided := h.h.(sha1cd.CollisionResistantHash).CollisionResistantSum(nil)
		if collided {
			return OID{}, fmt.Errorf("%w: sha1 collision attack detected", ErrCollision)
		}
		return OID{hex: hex.EncodeToString(sum)}, nil
	}
	return OID{hex: hex.EncodeToString(h.h.Sum(nil))}, nil
}

// Digest returns the OID of data under algo.
func Digest(algo Algorithm, data []byte) (OID, error) {
	h := NewHasher(algo)
	h.Write(data)
	return h.Sum()
}

// Check compares a finished Hasher with the OID the caller claimed.
func Check(want OID, h *Hasher) error {
	got, err := h.Sum()
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: body hashes to %s, not %s", ErrDigestMismatch, got, want)
	}
	return nil
}

// Verify checks that data hashes to oid: nil, ErrDigestMismatch or
// ErrCollision (wrapped).
func Verify(oid OID, data []byte) error {
	h := NewHasher(oid.Algorithm())
	h.Write(data)
	return Check(oid, h)
}
