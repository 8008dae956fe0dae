// Package cli is the stratum command line: the servers (dev, controlplane,
// datanode) and the client commands (put, get, head, cluster, ring). It is
// the only package that imports every other one, turns flags into Config
// structs, wires servers to clients, and decides exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Main runs the stratum command with args (args[0] is the program name) and
// returns the process exit code. Errors are printed as one line on stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "stratum: "+oneLine(err.Error()))
	if _, ok := errors.AsType[usageError](err); ok || strings.Contains(err.Error(), "flag provided but not defined") {
		return exitUsage
	}
	return exitError
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func newApp(stdout, stderr io.Writer) *ucli.App {
	return &ucli.App{
		Name:      "stratum",
		Usage:     "a distributed store for Git objects",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "endpoint", Usage: "URL of any data node", EnvVars: []string{"STRATUM_ENDPOINT"}, Value: "http://127.0.0.1:9001"},
			&ucli.StringFlag{Name: "token", Usage: "API token for nodes with auth on (stratum token create)", EnvVars: []string{"STRATUM_TOKEN"}},
			&ucli.StringFlag{Name: "cacert", Usage: "CA certificate to trust for an https --endpoint (stratum certs ca)", EnvVars: []string{"STRATUM_CACERT"}},
			&ucli.StringFlag{Name: "log-format", Usage: "server logs: text or json", Value: "text"},
			&ucli.StringFlag{Name: "log-level", Usage: "server logs: debug, info, warn or error", Value: "info"},
		},
		Commands: []*ucli.Command{
			configurable(devCommand()),
			configurable(controlplaneCommand()),
			configurable(datanodeCommand()),
			putCommand(),
			getCommand(),
			headCommand(),
			deleteCommand(),
			clusterCommand(),
			ringCommand(),
			nodeCommand(),
			refCommand(),
			partitionsCommand(),
			rebalanceCommand(),
			benchCommand(),
			certsCommand(),
			tokenCommand(),
			accessCommand(),
			completionCommand(),
		},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*ucli.Context, error) {},
		HideHelpCommand:      true,
		OnUsageError: func(_ *ucli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}
