package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// Flags win over STRATUM_* variables, which win over the --config file,
// which wins over defaults.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "stratum.yaml")
	os.WriteFile(file, []byte("from-file: file\nfile-and-env: file\nall-three: file\nttl: 7s\nlist: [a, b]\n"), 0o644)
	t.Setenv("STRATUM_FILE_AND_ENV", "env")
	t.Setenv("STRATUM_ALL_THREE", "env")
	got := map[string]string{}
	var ttl time.Duration
	var list []string
	cmd := configurable(&ucli.Command{
		Name: "x",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "from-file", Value: "default"},
			&ucli.StringFlag{Name: "file-and-env", Value: "default"},
			&ucli.StringFlag{Name: "all-three", Value: "default"},
			&ucli.StringFlag{Name: "untouched", Value: "default"},
			&ucli.DurationFlag{Name: "ttl", Value: time.Second},
			&ucli.StringSliceFlag{Name: "list"},
		},
		Action: func(c *ucli.Context) error {
			for _, n := range []string{"from-file", "file-and-env", "all-three", "untouched"} {
				got[n] = c.String(n)
			}
			ttl, list = c.Duration("ttl"), c.StringSlice("list")
			return nil
		},
	})
	app := &ucli.App{Commands: []*ucli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard}
	if err := app.RunContext(context.Background(), []string{"stratum", "x", "--config", file, "--all-three", "flag"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"from-file": "file", "file-and-env": "env", "all-three": "flag", "untouched": "default"}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q; want %q (all: %v)", k, got[k], v, got)
		}
	}
	if ttl != 7*time.Second || len(list) != 2 {
		t.Fatalf("ttl %s list %v from the file; want 7s [a b]", ttl, list)
	}
}
