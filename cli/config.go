package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// configurable gives a server command's flags two more sources, with this
// precedence: a flag on the command line, then the environment variable
// STRATUM_<FLAG_NAME> (dashes as underscores), then the YAML file named by
// --config (keys are the flag names), then the flag's default.
func configurable(cmd *ucli.Command) *ucli.Command {
	var flags []ucli.Flag
	for _, f := range cmd.Flags {
		flags = append(flags, withSources(f))
	}
	flags = append(flags, &ucli.StringFlag{Name: "config", EnvVars: []string{"STRATUM_CONFIG"},
		Usage: "YAML file of flag values (flags and STRATUM_* variables win over it)"})
	cmd.Flags = flags
	cmd.Before = altsrc.InitInputSourceWithContext(flags, altsrc.NewYamlSourceFromFlagFunc("config"))
	return cmd
}

func envName(name string) []string {
	return []string{"STRATUM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

// withSources wraps f so the config file can fill it and adds its
// environment variable.
func withSources(f ucli.Flag) ucli.Flag {
	switch f := f.(type) {
	case *ucli.StringFlag:
		f.EnvVars = envName(f.Name)
		return altsrc.NewStringFlag(f)
	case *ucli.StringSliceFlag:
		f.EnvVars = envName(f.Name)
		return altsrc.NewStringSliceFlag(f)
	case *ucli.IntFlag:
		f.EnvVars = envName(f.Name)
		return altsrc.NewIntFlag(f)
	case *ucli.Int64Flag:
		f.EnvVars = envName(f.Name)
		return altsrc.NewInt64Flag(f)
	case *ucli.BoolFlag:
		f.EnvVars = envName(f.Name)
		return altsrc.NewBoolFlag(f)
	case *ucli.DurationFlag:
		f.EnvVars = envName(f.Name)
		return altsrc.NewDurationFlag(f)
	}
	panic(fmt.Sprintf("cli: flag %v has a type the config file cannot fill", f.Names()))
}

// flagSource says where a configurable flag's value came from, in the
// precedence order of configurable: "the --NAME flag", "the environment
// (STRATUM_NAME)", "the config file PATH" or "the default".
func flagSource(c *ucli.Context, name string) string {
	if onCommandLine(c, name) {
		return "the --" + name + " flag"
	}
	env := envName(name)[0]
	if _, ok := os.LookupEnv(env); ok {
		return "the environment (" + env + ")"
	}
	if c.IsSet(name) && c.String("config") != "" {
		return "the config file " + c.String("config")
	}
	return "the default"
}

// onCommandLine reports whether --name (or -name) appears among the
// command's arguments, which its parents' contexts keep whole (c itself
// keeps only the positional ones).
func onCommandLine(c *ucli.Context, name string) bool {
	for _, ctx := range c.Lineage()[1:] {
		for _, a := range ctx.Args().Slice() {
			if a == "--" {
				break
			}
			flag := strings.TrimLeft(a, "-")
			if strings.HasPrefix(a, "-") && (flag == name || strings.HasPrefix(flag, name+"=")) {
				return true
			}
		}
	}
	return false
}

// warnAuthOff logs a WARN when a data node runs without API tokens, and
// which setting turned them off.
func warnAuthOff(c *ucli.Context, logger *slog.Logger) {
	if !c.Bool("auth") {
		logger.Warn("auth is off: any client that reaches this node can read, write, delete and run admin actions (docs/security.md)",
			"setting", "auth=false", "from", flagSource(c, "auth"))
	}
}
