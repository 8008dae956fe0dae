package objid

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	sha256Hex := strings.Repeat("ab", 32)
	sha1Hex := strings.Repeat("0f", 20)
	f := func(in string, wantAlgo Algorithm, wantErr bool) {
		t.Helper()
		oid, err := Parse(in)
		if (err != nil) != wantErr || (err == nil && oid.Algorithm() != wantAlgo) {
			t.Fatalf("Parse(%q) = %v, %v; want algo %v, err %t", in, oid.Algorithm(), err, wantAlgo, wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", in, err)
		}
	}
	f(sha256Hex, SHA256, false)
	f(sha1Hex, SHA1, false)
	f("", 0, true)
	f(sha256Hex[:63], 0, true)
	f(sha256Hex+"a", 0, true)
	f(strings.ToUpper(sha256Hex), 0, true)
	f(sha1Hex[:39]+"g", 0, true)
	f(sha1Hex[:38]+"/.", 0, true)
	f(sha1Hex[:39]+"\x00", 0, true)
	f(sha1Hex[:39]+"\n", 0, true)
	f("../../../../../../../../../../../../../../etc/passwd", 0, true)
}

func TestDigestAndVerify(t *testing.T) {
	f := func(algo Algorithm, data, want string) {
		t.Helper()
		oid, err := Digest(algo, []byte(data))
		if err != nil || oid.String() != want {
			t.Fatalf("Digest(%v, %q) = %s, %v; want %s", algo, data, oid, err, want)
		}
		if err := Verify(oid, []byte(data)); err != nil {
			t.Fatalf("Verify own digest: %v", err)
		}
		if err := Verify(oid, []byte(data+"x")); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("Verify other bytes: %v; want ErrDigestMismatch", err)
		}
	}
	f(SHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f(SHA1, "blob 6\x00hello\n", "ce013625030ba8dba906f756967f9e9ca394464a") // git hash-object
	f(SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
}

func TestSHA1CollisionDetected(t *testing.T) {
	for _, name := range []string{"sha-mbles-1.bin", "sha-mbles-2.bin"} {
		data, err := os.ReadFile("../../testdata/sha1-collision/" + name)
		if err != nil {
			t.Fatalf("collision pair: %v", err)
		}
		if _, err := Digest(SHA1, data); !errors.Is(err, ErrCollision) {
			t.Fatalf("Digest(SHA1, %s): %v; want ErrCollision", name, err)
		}
		err = Verify(MustParse("8ac60ba76f1999a1ab70223f225aefdc78d4ddc0"), data)
		if !errors.Is(err, ErrCollision) {
			t.Fatalf("Verify %s: %v; want ErrCollision", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(strings.Repeat("a", 64))
	f.Add("..%2f..%2fetc%2fpasswd")
	f.Add(strings.Repeat("0", 40))
	f.Fuzz(func(t *testing.T, s string) {
		oid, err := Parse(s)
		if err != nil {
			return
		}
		if oid.String() != s || strings.ContainsAny(s, "/.%\x00") {
			t.Fatalf("ParseOID accepted %q as %q", s, oid)
		}
		if oid.Algorithm().HexLen() != len(s) {
			t.Fatalf("Parse(%q): algorithm %v for length %d", s, oid.Algorithm(), len(s))
		}
	})
}
