package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteReplacesWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Write(path, 0o600, strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, 0o644, strings.NewReader("second")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("content %q; want second", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v; want 0644", fi.Mode().Perm())
	}
	// A reader that fails halfway leaves the old content and no temporary file.
	boom := errors.New("boom")
	if err := Write(path, 0o644, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("Write with a failing reader: %v; want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("after a failed write the content is %q; want second", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d entries in the directory; want only the file", len(ents))
	}
	if err := Write(filepath.Join(dir, "missing", "f"), 0o644, strings.NewReader("x")); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
}
