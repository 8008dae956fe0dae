package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/cli"
)

// `stratum get -o FILE` replaces FILE atomically and keeps its mode: a
// 0600 file stays 0600 (issue 21.8); a new file is 0644.
func TestGetOutputKeepsFileMode(t *testing.T) {
	c := MustStartCluster(t, 1, nil)
	data := []byte("private bytes\n")
	rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.One)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	get := func(out string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := cli.Main(context.Background(), []string{"stratum", "--endpoint", c.URL(0), "get", "--consistency", "one", "-o", out, rec.OID}, &stdout, &stderr); code != 0 {
			t.Fatalf("stratum get -o %s: exit %d, stderr %q", out, code, stderr.String())
		}
		if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("%s after get: %q %v; want %q", out, b, err, data)
		}
	}
	f := func(out string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(out)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("mode of %s after get -o: %v %v; want %v", out, fi.Mode().Perm(), err, want)
		}
	}
	private := filepath.Join(dir, "private")
	if err := os.WriteFile(private, []byte("old secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	get(private)
	f(private, 0o600)
	fresh := filepath.Join(dir, "fresh")
	get(fresh)
	f(fresh, 0o644)
}
