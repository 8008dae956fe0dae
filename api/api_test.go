package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
)

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

// TestValueFrames reads a value frame (node to node) back with its stamp
// and its Value mark, and refuses an unknown fourth field.
func TestValueFrames(t *testing.T) {
	var buf strings.Builder
	a, _ := Digest(SHA256, []byte("alpha"))
	WriteValueFrame(&buf, a, []byte{1, 2, 3}, 0)
	WriteValueFrame(&buf, a, []byte{4}, 77)
	WriteStampedFrame(&buf, a, []byte("alpha"), 78)
	r := bufio.NewReader(strings.NewReader(buf.String()))
	for _, want := range []Frame{{OID: a, Data: []byte{1, 2, 3}, Value: true}, {OID: a, Data: []byte{4}, Stamp: 77, Value: true}, {OID: a, Data: []byte("alpha"), Stamp: 78}} {
		f, err := ReadStampedFrame(r, 100)
		if err != nil || f.OID != want.OID || string(f.Data) != string(want.Data) || f.Stamp != want.Stamp || f.Value != want.Value {
			t.Fatalf("ReadStampedFrame = %+v, %v; want %+v", f, err, want)
		}
	}
	// The Append forms write the same bytes, in one buffer, and no header
	// is longer than MaxFrameHeader (the largest stamp, a SHA-256 OID).
	var appended []byte
	appended = AppendValueFrame(appended, a, []byte{1, 2, 3}, 0)
	appended = AppendValueFrame(appended, a, []byte{4}, 77)
	appended = AppendStampedFrame(appended, a, []byte("alpha"), 78)
	if string(appended) != buf.String() {
		t.Fatalf("Append frames = %q; want %q as the Write forms wrote", appended, buf.String())
	}
	if h := AppendValueFrame(nil, a, nil, Stamp(math.MaxUint64)); len(h) > MaxFrameHeader {
		t.Fatalf("a %d-byte header (%q); MaxFrameHeader is %d", len(h), h, MaxFrameHeader)
	}
	if _, err := ReadStampedFrame(bufio.NewReader(strings.NewReader(a.String()+" 1 0 gzip\nx")), 100); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a frame with an unknown fourth field: %v; want bad request", err)
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

// The wire contract re-exports the identity: its names are objid's, so an
// error from either side matches with errors.Is.
func TestReexportsAreObjid(t *testing.T) {
	oid, err := ParseOID(strings.Repeat("0f", 20))
	if err != nil || oid.Algorithm() != SHA1 {
		t.Fatalf("ParseOID: %v, %v; want a sha1 OID", oid, err)
	}
	if _, err := ParseOID("x"); !errors.Is(err, ErrInvalidOID) {
		t.Fatalf("ParseOID(x): %v; want ErrInvalidOID", err)
	}
	if err := Verify(oid, []byte("x")); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Verify: %v; want ErrDigestMismatch", err)
	}
	if status, code := StatusOf(fmt.Errorf("wrapped: %w", ErrCollision)); status != 400 || code != "sha1_collision" {
		t.Fatalf("StatusOf(collision) = %d %s; want 400 sha1_collision", status, code)
	}
}
