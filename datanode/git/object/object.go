package object

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"

	"github.com/pjbgf/sha1cd"
)

// Type is an object type. Its values are the type numbers of the pack format.
type Type uint8

// The object types.
const (
	Commit Type = 1
	Tree   Type = 2
	Blob   Type = 3
	Tag    Type = 4
)

var typeNames = [...]string{Commit: "commit", Tree: "tree", Blob: "blob", Tag: "tag"}

// String returns Git's name of the type.
func (t Type) String() string {
	if t >= Commit && t <= Tag {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is one of the four object types.
func (t Type) Valid() bool { return t >= Commit && t <= Tag }

// ParseType parses "blob", "tree", "commit" or "tag".
func ParseType(s string) (Type, error) {
	for t := Commit; t <= Tag; t++ {
		if typeNames[t] == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrBadType, s)
}

// ID is a SHA-1 object ID.
type ID [20]byte

// String returns the 40-character lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the all-zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 40 lowercase hex characters.
func ParseID(s string) (ID, error) {
	var id ID
	if !isLowerHex(s, 40) {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	_, _ = hex.Decode(id[:], []byte(s))
	return id, nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// AppendHeader appends the canonical header "<type> <size>\x00" to dst.
func AppendHeader(dst []byte, t Type, size int64) []byte {
	dst = append(dst, t.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, size, 10)
	return append(dst, 0)
}

// Canonical returns the canonical form of an object.
func Canonical(t Type, body []byte) []byte {
	return append(AppendHeader(make([]byte, 0, len(body)+32), t, int64(len(body))), body...)
}

// ParseCanonical splits a canonical form into type and body, checking that
// the declared size matches the body.
func ParseCanonical(b []byte) (Type, []byte, error) {
	sp := bytes.IndexByte(b, ' ')
	nul := bytes.IndexByte(b, 0)
	if sp < 0 || nul < sp {
		return 0, nil, fmt.Errorf("%w: no '<type> <size>\\0' header", ErrInvalid)
	}
	t, err := ParseType(string(b[:sp]))
	if err != nil {
		return 0, nil, err
	}
	size := string(b[sp+1 : nul])
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || (len(size) > 1 && size[0] == '0') || int64(len(b)-nul-1) != n {
		return 0, nil, fmt.Errorf("%w: header size %q, body has %d bytes", ErrInvalid, size, len(b)-nul-1)
	}
	return t, b[nul+1:], nil
}

// Hasher computes an object ID from a streamed body. Write the body (exactly
// the size given to NewHasher), then call Sum.
type Hasher struct {
	h hash.Hash
}

// NewHasher returns a Hasher that has already hashed the header.
func NewHasher(t Type, size int64) *Hasher {
	h := &Hasher{h: sha1cd.New()}
	h.h.Write(AppendHeader(nil, t, size))
	return h
}

// Write hashes more of the body.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum returns the ID, or ErrCollision if the input carried a collision attack.
func (h *Hasher) Sum() (ID, error) {
	var id ID
	sum, collided := h.h.(sha1cd.CollisionResistantHash).CollisionResistantSum(nil)
	if collided {
		return id, ErrCollision
	}
	copy(id[:], sum)
	return id, nil
}

// Hash returns the ID of an object, or ErrCollision.
func Hash(t Type, body []byte) (ID, error) {
	h := NewHasher(t, int64(len(body)))
	h.Write(body)
	return h.Sum()
}

// HashRaw returns the SHA-1 of data as is (no object header), or
// ErrCollision: for pack checksums and raw inputs.
func HashRaw(data []byte) ([20]byte, error) {
	sum, collided := sha1cd.Sum(data)
	if collided {
		return sum, ErrCollision
	}
	return sum, nil
}
