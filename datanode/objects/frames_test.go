package objects

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/store"
)

// readFrames reads every replica batch through a pooled buffer. The items
// of one batch must stay intact after the buffer has been reused for the
// next ones: a store still holding them (a slow fsync) would otherwise
// write another request's bytes under this OID.
func TestFramesOutliveTheirPooledReader(t *testing.T) {
	n := New(Config{ID: "a", Store: store.Config{LargeThreshold: 64 << 10}}, Deps{})
	batch := func(tag string, count int) (body []byte, want [][]byte) {
		for i := range count {
			data := bytes.Repeat([]byte(fmt.Sprintf("%s-%d ", tag, i)), 500) // ~4 KiB, several per 64 KiB buffer
			oid, _ := api.Digest(api.SHA256, data)
			body = api.AppendStampedFrame(body, oid, data, api.Stamp(i+1))
			want = append(want, data)
		}
		return body, want
	}
	firstBody, firstWant := batch("first", 40) // more than one buffer's worth
	first, err := n.readFrames(bytes.NewReader(firstBody), true)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 8 { // the pool hands the same reader back on this goroutine
		body, want := batch(fmt.Sprintf("later%d", round), 20)
		items, err := n.readFrames(bytes.NewReader(body), true)
		if err != nil || len(items) != len(want) {
			t.Fatalf("round %d: %d items, %v; want %d", round, len(items), err, len(want))
		}
		for i, it := range items {
			if !bytes.Equal(it.Data, want[i]) {
				t.Fatalf("round %d item %d: bytes differ from those sent", round, i)
			}
		}
	}
	if len(first) != len(firstWant) {
		t.Fatalf("first batch: %d items; want %d", len(first), len(firstWant))
	}
	for i, it := range first {
		if !bytes.Equal(it.Data, firstWant[i]) {
			t.Fatalf("first batch item %d changed after its reader was reused", i)
		}
		if it.Stamp != api.Stamp(i+1) {
			t.Fatalf("first batch item %d: stamp %v; want %d", i, it.Stamp, i+1)
		}
	}
	// A truncated batch fails cleanly and leaves the pool usable.
	if _, err := n.readFrames(bytes.NewReader(firstBody[:len(firstBody)-10]), true); err == nil {
		t.Fatal("a batch cut short was read without error")
	}
	if items, err := n.readFrames(bytes.NewReader(firstBody), true); err != nil || len(items) != len(firstWant) {
		t.Fatalf("after a failed read: %d items, %v", len(items), err)
	}
}
