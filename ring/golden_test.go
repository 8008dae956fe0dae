package ring

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/placement.golden from the current code")

const goldenPath = "testdata/placement.golden"

// goldenRings are the fixed rings of the golden file, all on nodes n1..n5:
// without zones; with four zones (n5 has none, so it is in zone ""), where
// the first pass fills every set; and with two zones, where the second pass
// fills the third slot.
func goldenRings(t *testing.T) []namedRing {
	return []namedRing{
		{"plain", mustNew(t, numberedNodes(5), DefaultConfig())},
		{"zoned", mustNew(t, zonedNodes("a", "b", "a", "c", ""), DefaultConfig())},
		{"twozone", mustNew(t, zonedNodes("a", "b", "a", "b", "a"), DefaultConfig())},
	}
}

type namedRing struct {
	name string
	ring *Ring
}

// goldenKeys are 200 fixed keys shaped like SHA-256 object IDs: the hex of
// SHA-256("key-<i>").
func goldenKeys() []string {
	keys := make([]string, 200)
	for i := range keys {
		h := sha256.Sum256([]byte(fmt.Sprintf("key-%d", i)))
		keys[i] = hex.EncodeToString(h[:])
	}
	return keys
}

// renderGolden writes the placement of every golden key on every golden
// ring, one "<ring> <key> <replica IDs>" line each, after a header.
func renderGolden(t *testing.T) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Placement of fixed keys on fixed rings; see golden_test.go.\n")
	fmt.Fprintf(&b, "# Regenerate only for a deliberate placement change: go test ./ring -run TestPlacementGolden -update\n")
	fmt.Fprintf(&b, "# config: %+v\n", DefaultConfig())
	rings := goldenRings(t)
	for _, r := range rings {
		for _, n := range r.ring.Nodes() {
			fmt.Fprintf(&b, "# %s node: %+v\n", r.name, n)
		}
	}
	for _, r := range rings {
		for _, key := range goldenKeys() {
			set := ids(r.ring.Replicas([]byte(key)))
			fmt.Fprintf(&b, "%s %s %s\n", r.name, key, strings.Join(set, ","))
		}
	}
	return b.Bytes()
}

// TestPlacementGolden pins placement. It fails when the hash, the vnode
// naming, the default VNodes or Replicas, or the walk order change, because
// any of those would move data already stored. If the change is deliberate
// (and comes with a migration), rerun with -update and commit the new file.
func TestPlacementGolden(t *testing.T) {
	got := renderGolden(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", goldenPath)
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(gotLines), len(wantLines)) {
		if gotLines[i] != wantLines[i] {
			t.Fatalf("%s line %d: placement changed\ngot:  %s\nwant: %s", goldenPath, i+1, gotLines[i], wantLines[i])
		}
	}
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%s: got %d lines; want %d", goldenPath, len(gotLines), len(wantLines))
	}
}
