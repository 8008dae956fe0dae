package pack

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zlib"
)

// TestHeaderSizeDoesNotPreallocate: an entry whose header claims a huge
// size but whose stream is tiny is refused without allocating the claimed
// size (an attacker's pack would otherwise cost MaxObjectSize per entry).
func TestHeaderSizeDoesNotPreallocate(t *testing.T) {
	const claimed = 400 << 20
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte("tiny"))
	zw.Close()
	blob := rawPack(t, func(w *Writer) error {
		w.write(append(appendEntryHeader(nil, 3, claimed), z.Bytes()...))
		w.added++
		return w.err
	})
	base := blobEntry(baseBody)
	deltaClaim := rawPack(t, base, ofsEntry(delta(len(baseBody), claimed, 1, 'x')))
	for name, p := range map[string][]byte{"whole object": blob, "delta result": deltaClaim} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := readAll(t, p, Config{})
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: got nil; want an error", name)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
			t.Errorf("%s: allocated %d bytes to refuse it; want under 32 MiB for a claim of %d", name, got, claimed)
		}
	}
}
