package downtime

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteReadAway(t *testing.T) {
	dir := t.TempDir()
	m := Mark{Path: filepath.Join(dir, "healthy")}
	if d, err := m.Away(time.Now()); err != nil || d != 0 {
		t.Fatalf("Away without a record = %v, %v; want 0", d, err)
	}
	at := time.UnixMilli(1_700_000_000_000)
	if err := m.Write(at); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(at.Add(time.Minute)); err != nil { // replaces, not appends
		t.Fatal(err)
	}
	got, ok, err := m.Read()
	if err != nil || !ok || !got.Equal(at.Add(time.Minute)) {
		t.Fatalf("Read = %v %v %v; want %v", got, ok, err, at.Add(time.Minute))
	}
	if d, _ := m.Away(at.Add(11 * time.Minute)); d != 10*time.Minute {
		t.Fatalf("Away = %v; want 10m", d)
	}
	if d, _ := m.Away(at); d != 0 {
		t.Fatalf("Away with the clock gone backwards = %v; want 0", d)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries; want only the record (no temp files left)", len(entries))
	}
}

func TestCorruptRecordIsAnError(t *testing.T) {
	m := Mark{Path: filepath.Join(t.TempDir(), "healthy")}
	os.WriteFile(m.Path, []byte("yesterday"), 0o644)
	if _, _, err := m.Read(); err == nil {
		t.Fatal("a record that is not a time was accepted")
	}
}
