package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// A data node started with auth off logs a WARN that says which setting
// turned it off: the flag, the environment or the config file (issue
// 21.8). The datanode command runs as the binary would, up to its
// configuration (datanodeConfig), without etcd.
func TestDatanodeWarnsWhenAuthIsOff(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(file, []byte("auth: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(name, env string, args []string, want string) {
		t.Run(name, func(t *testing.T) {
			if env != "" {
				t.Setenv("STRATUM_AUTH", env)
			}
			var logs bytes.Buffer
			cmd := datanodeCommand()
			cmd.Action = func(c *ucli.Context) error {
				logger, err := newLogger(c, &logs)
				if err != nil {
					return err
				}
				datanodeConfig(c, nil, logger)
				return nil
			}
			app := newApp(io.Discard, io.Discard)
			for i, existing := range app.Commands {
				if existing.Name == "datanode" {
					app.Commands[i] = configurable(cmd)
				}
			}
			argv := append([]string{"stratum", "datanode", "--id", "n1", "--data-dir", t.TempDir()}, args...)
			if err := app.RunContext(context.Background(), argv); err != nil {
				t.Fatal(err)
			}
			got := logs.String()
			warned := strings.Contains(got, "level=WARN") && strings.Contains(got, "auth is off")
			switch {
			case want == "" && warned:
				t.Fatalf("%v: got a WARN %q; want none (auth is on)", args, got)
			case want != "" && (!warned || !strings.Contains(got, want)):
				t.Fatalf("%v (STRATUM_AUTH=%q): logs %q; want a WARN that auth is off, from %q", args, env, got, want)
			}
		})
	}
	f("default", "", nil, "")
	f("flag", "", []string{"--auth=false"}, `from="the --auth flag"`)
	f("environment", "false", nil, `from="the environment (STRATUM_AUTH)"`)
	f("file", "", []string{"--config", file}, `from="the config file `+file+`"`)
	f("flag wins over the environment", "false", []string{"--auth"}, "")
	f("environment wins over the file", "true", []string{"--config", file}, "")
}
