package cli

import (
	"io"
	"log/slog"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// newLogger builds the server logger from the global --log-format and
// --log-level flags.
func newLogger(c *ucli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.String("log-format")) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format must be text or json, got %q", c.String("log-format"))
}
