package objid

import "testing"

// FuzzVerify: Verify accepts bytes only under the OID they hash to.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("blob 6\x00hello\n"), true)
	f.Add([]byte(""), false)
	f.Fuzz(func(t *testing.T, data []byte, sha1 bool) {
		algo := SHA256
		if sha1 {
			algo = SHA1
		}
		oid, err := Digest(algo, data)
		if err != nil {
			return // a SHA-1 collision attack detected: refused, as it must be
		}
		if err := Verify(oid, data); err != nil {
			t.Fatalf("Verify of its own digest failed: %v", err)
		}
		if len(data) > 0 {
			flipped := append([]byte(nil), data...)
			flipped[0] ^= 1
			if Verify(oid, flipped) == nil {
				t.Fatal("Verify accepted bytes that do not hash to the OID")
			}
		}
	})
}
