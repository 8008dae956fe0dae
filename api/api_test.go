package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func TestParseOID(t *testing.T) {
	sha256Hex := strings.Repeat("ab", 32)
	sha1Hex := strings.Repeat("0f", 20)
	f := func(in string, wantAlgo Algorithm, wantErr bool) {
		t.Helper()
		oid, err := ParseOID(in)
		if (err != nil) != wantErr || (err == nil && oid.Algorithm() != wantAlgo) {
			t.Fatalf("ParseOID(%q) = %v, %v; want algo %v, err %t", in, oid.Algorithm(), err, wantAlgo, wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidOID) {
			t.Fatalf("ParseOID(%q) error %v does not wrap ErrInvalidOID", in, err)
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
		data, err := os.ReadFile("../testdata/sha1-collision/" + name)
		if err != nil {
			t.Fatalf("collision pair: %v", err)
		}
		if _, err := Digest(SHA1, data); !errors.Is(err, ErrCollision) {
			t.Fatalf("Digest(SHA1, %s): %v; want ErrCollision", name, err)
		}
		err = Verify(MustParseOID("8ac60ba76f1999a1ab70223f225aefdc78d4ddc0"), data)
		if !errors.Is(err, ErrCollision) {
			t.Fatalf("Verify %s: %v; want ErrCollision", name, err)
		}
	}
}

func TestConsistency(t *testing.T) {
	f := func(in string, n, want int, wantErr bool) {
		t.Helper()
		c, err := ParseConsistency(in)
		if (err != nil) != wantErr || (err == nil && c.Required(n) != want) {
			t.Fatalf("ParseConsistency(%q).Required(%d) = %d, %v; want %d, err %t", in, n, c.Required(n), err, want, wantErr)
		}
	}
	f("", 3, 2, false)
	f("one", 3, 1, false)
	f("quorum", 3, 2, false)
	f("quorum", 5, 3, false)
	f("quorum", 4, 3, false)
	f("all", 3, 3, false)
	f("ALL", 3, 0, true)
	f("two", 3, 0, true)
}

func TestErrorsRoundTrip(t *testing.T) {
	for _, e := range errorTable {
		status, body := EncodeError(fmt.Errorf("context: %w", e.err))
		if status != e.status {
			t.Fatalf("EncodeError(%v) status %d; want %d", e.err, status, e.status)
		}
		back := DecodeError(status, body)
		if !errors.Is(back, e.err) || !strings.Contains(back.Error(), "context") {
			t.Fatalf("DecodeError(EncodeError(%v)) = %v; want it to wrap the sentinel and keep the message", e.err, back)
		}
	}
	if err := DecodeError(502, []byte("<html>bad gateway</html>")); !errors.Is(err, ErrInternal) {
		t.Fatalf("DecodeError(non-JSON) = %v; want ErrInternal", err)
	}
	if status, code := StatusOf(errors.New("plain")); status != 500 || code != "internal" {
		t.Fatalf("StatusOf(plain error) = %d %s; want 500 internal", status, code)
	}
}

func FuzzParseOID(f *testing.F) {
	f.Add(strings.Repeat("a", 64))
	f.Add("..%2f..%2fetc%2fpasswd")
	f.Add(strings.Repeat("0", 40))
	f.Fuzz(func(t *testing.T, s string) {
		oid, err := ParseOID(s)
		if err != nil {
			return
		}
		if oid.String() != s || strings.ContainsAny(s, "/.%\x00") {
			t.Fatalf("ParseOID accepted %q as %q", s, oid)
		}
		if oid.Algorithm().HexLen() != len(s) {
			t.Fatalf("ParseOID(%q): algorithm %v for length %d", s, oid.Algorithm(), len(s))
		}
	})
}

func TestFramesRoundTrip(t *testing.T) {
	var buf strings.Builder
	a, _ := Digest(SHA256, []byte("alpha"))
	b, _ := Digest(SHA1, []byte(""))
	WriteFrame(&buf, a, []byte("alpha"))
	WriteMissingFrame(&buf, b, "not_found")
	WriteFrame(&buf, b, nil)
	r := bufio.NewReader(strings.NewReader(buf.String()))
	f := func(wantOID OID, wantData, wantCode string) {
		t.Helper()
		oid, data, code, err := ReadFrame(r, 100)
		if err != nil || oid != wantOID || string(data) != wantData || code != wantCode {
			t.Fatalf("ReadFrame = %s %q %q %v; want %s %q %q", oid, data, code, err, wantOID, wantData, wantCode)
		}
	}
	f(a, "alpha", "")
	f(b, "", "not_found")
	f(b, "", "")
	if _, _, _, err := ReadFrame(r, 100); err != io.EOF {
		t.Fatalf("at the end: %v; want io.EOF", err)
	}
	for _, bad := range []string{"nothex 3\nabc", a.String() + " 9\nabc", a.String() + " x\n", a.String() + " 101\n", a.String() + "\n"} {
		if _, _, _, err := ReadFrame(bufio.NewReader(strings.NewReader(bad)), 100); err == nil || err == io.EOF {
			t.Fatalf("ReadFrame(%q) accepted it", bad)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 64) + " 3\nabc"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(strings.NewReader(string(in)))
		for i := 0; i < 100; i++ {
			_, data, _, err := ReadFrame(r, 1<<20)
			if err != nil {
				return
			}
			if len(data) > 1<<20 {
				t.Fatal("frame above the limit accepted")
			}
		}
	})
}

func BenchmarkParseOID(b *testing.B) {
	s := strings.Repeat("ab", 32)
	for b.Loop() {
		if _, err := ParseOID(s); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerify(b *testing.B, algo Algorithm) {
	data := make([]byte, 4096)
	oid, _ := Digest(algo, data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Verify(oid, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify4KiBSHA256(b *testing.B) { benchmarkVerify(b, SHA256) }
func BenchmarkVerify4KiBSHA1(b *testing.B)   { benchmarkVerify(b, SHA1) }
