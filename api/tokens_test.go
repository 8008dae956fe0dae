package api

import (
	"errors"
	"strings"
	"testing"
)

func TestTokensParseMatchAndAllow(t *testing.T) {
	rec, tok, err := NewToken("ci", []string{ScopeWrite, ScopeRead, ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := ParseToken(tok)
	if err != nil || id != rec.ID || !rec.Matches(secret) {
		t.Fatalf("ParseToken(%q) = %q, %q, %v; want id %s and a matching secret", tok, id, secret, err, rec.ID)
	}
	if strings.Contains(rec.Hash, secret) || rec.Matches(strings.Repeat("0", 64)) {
		t.Fatal("the record holds the secret, or matches another one")
	}
	if got := strings.Join(rec.Scopes, ","); got != "read,write" {
		t.Fatalf("scopes %q; want read,write", got)
	}
	if !rec.Allows(ScopeRead) || !rec.Allows(ScopeWrite) || rec.Allows(ScopeAdmin) {
		t.Fatal("read,write must allow read and write, not admin")
	}
	if admin := (Token{Scopes: []string{ScopeAdmin}}); !admin.Allows(ScopeRead) || !admin.Allows(ScopeWrite) {
		t.Fatal("admin must allow everything")
	}
	for _, bad := range []string{"", tok + "0", strings.ToUpper(tok), "stratum_" + strings.Repeat("g", 12) + "_" + secret, "Bearer " + tok, strings.Replace(tok, "_", "-", 2)} {
		if _, _, err := ParseToken(bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("ParseToken(%q): %v; want unauthenticated", bad, err)
		}
	}
	for _, scopes := range [][]string{nil, {"root"}, {"read", ""}} {
		if _, _, err := NewToken("x", scopes); !errors.Is(err, ErrBadRequest) {
			t.Errorf("NewToken scopes %q: %v; want bad_request", scopes, err)
		}
	}
	if _, _, err := NewToken("", []string{"read"}); !errors.Is(err, ErrBadRequest) {
		t.Error("a token without a name was made")
	}
}

// FuzzParseToken: no input panics, and whatever parses is exactly the
// token format, so a stored id can never be confused by a crafted one.
func FuzzParseToken(f *testing.F) {
	_, tok, _ := NewToken("seed", []string{ScopeRead})
	for _, s := range []string{tok, "", "stratum_", "stratum_0123456789ab_", tok[:len(tok)-1] + "G", "Bearer " + tok} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := ParseToken(s)
		if err != nil {
			return
		}
		if "stratum_"+id+"_"+secret != s || len(id) != 12 || len(secret) != 64 || !isLowerHex(id) || !isLowerHex(secret) {
			t.Fatalf("ParseToken(%q) = %q, %q", s, id, secret)
		}
	})
}
