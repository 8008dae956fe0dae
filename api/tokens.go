package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// API tokens (docs/security.md). A token is "stratum_<id>_<secret>": the
// id (12 hex characters) names its record, the secret (64 hex characters,
// 256 random bits) proves it. Only the secret's SHA-256 is stored; a
// secret that random needs no slow hash.

// HeaderAuthorization carries "Bearer <token>".
const HeaderAuthorization = "Authorization"

// Token scopes. Admin includes read and write.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// Token is a token's stored record: never the secret itself.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scopes  []string  `json:"scopes"`
	Hash    string    `json:"hash"` // hex SHA-256 of the secret
	Created time.Time `json:"created"`
}

// NewToken makes a token with a fresh id and secret for name and scopes.
// It returns the record to store and the token to give out, once.
func NewToken(name string, scopes []string) (Token, string, error) {
	if err := ValidateScopes(scopes); err != nil {
		return Token{}, "", err
	}
	if name == "" || len(name) > 100 || strings.ContainsAny(name, "\x00\n\r") {
		return Token{}, "", fmt.Errorf("%w: a token name is 1 to 100 characters on one line", ErrBadRequest)
	}
	var b [6 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, "", err
	}
	id, secret := hex.EncodeToString(b[:6]), hex.EncodeToString(b[6:])
	rec := Token{ID: id, Name: name, Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), Hash: hashSecret(secret), Created: time.Now().UTC()}
	return rec, "stratum_" + id + "_" + secret, nil
}

// ValidateScopes accepts one or more of read, write and admin.
func ValidateScopes(scopes []string) error {
	if len(scopes) == 0 {
		return fmt.Errorf("%w: a token needs at least one scope (read, write, admin)", ErrBadRequest)
	}
	for _, s := range scopes {
		if s != ScopeRead && s != ScopeWrite && s != ScopeAdmin {
			return fmt.Errorf("%w: scope %q is not read, write or admin", ErrBadRequest, s)
		}
	}
	return nil
}

// ParseToken splits a token into its id and secret, or fails with
// ErrUnauthenticated without echoing it.
func ParseToken(s string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(s, "stratum_")
	if !ok || len(rest) != 12+1+64 || rest[12] != '_' || !isLowerHex(rest[:12]) || !isLowerHex(rest[13:]) {
		return "", "", fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	return rest[:12], rest[13:], nil
}

// Matches reports whether secret is this token's (in constant time).
func (t Token) Matches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(t.Hash)) == 1
}

// Allows reports whether the token's scopes cover need.
func (t Token) Allows(need string) bool {
	return slices.Contains(t.Scopes, need) || slices.Contains(t.Scopes, ScopeAdmin)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
