package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/internal/atomicfile"
)

func consistencyFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "consistency", Value: "quorum", Usage: "one, quorum or all"}
}

func putCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "put",
		Usage:     "store a file (or - for stdin); prints its OID and the receipt",
		ArgsUsage: "FILE|-",
		Flags: []ucli.Flag{
			consistencyFlag(),
			&ucli.BoolFlag{Name: "sha1", Usage: "use a SHA-1 OID (Git's classic format) instead of SHA-256"},
			&ucli.StringFlag{Name: "batch", Usage: "store every file under this directory with batch requests; prints one OID and path per line"},
			&ucli.IntFlag{Name: "batch-size", Value: 500, Usage: "objects per batch request"},
		},
		Action: runPut,
	}
}

func runPut(c *ucli.Context) error {
	if c.String("batch") != "" {
		return runPutBatch(c)
	}
	if c.NArg() != 1 {
		return usagef("put takes one argument, FILE or -; flags go before it")
	}
	cl, level, err := clientFor(c)
	if err != nil {
		return err
	}
	f, cleanup, err := openInput(c.Args().First(), c.App.Reader)
	if err != nil {
		return err
	}
	defer cleanup()
	algo := api.SHA256
	if c.Bool("sha1") {
		algo = api.SHA1
	}
	oid, size, err := hashFile(f, algo)
	if err != nil {
		return err
	}
	rec, err := cl.Put(c.Context, oid, io.NewSectionReader(f, 0, size), size, level)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, rec.OID)
	fmt.Fprintf(c.App.Writer, "size=%d created=%t acked=%s pending=%s failed=%s required=%d consistency=%s ring_revision=%d degraded=%t\n",
		rec.Size, rec.Created, strings.Join(rec.Acked, ","), strings.Join(rec.Pending, ","), strings.Join(rec.Failed, ","),
		rec.Required, rec.Consistency, rec.RingRevision, rec.Degraded)
	return nil
}

// openInput opens path, or spools stdin to an unlinked temp file for "-", so
// the body can be hashed first and then sent with its length.
func openInput(path string, stdin io.Reader) (*os.File, func(), error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	f, err := os.CreateTemp("", "stratum-put-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name())
	if stdin == nil {
		stdin = os.Stdin
	}
	if _, err := io.Copy(f, stdin); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading stdin: %w", err)
	}
	return f, func() { f.Close() }, nil
}

func hashFile(f *os.File, algo api.Algorithm) (api.OID, int64, error) {
	h := api.NewHasher(algo)
	size, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return api.OID{}, 0, err
	}
	oid, err := h.Sum()
	return oid, size, err
}

func getCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "get",
		Usage:     "fetch an object, verified against its OID",
		ArgsUsage: "OID",
		Flags: []ucli.Flag{
			consistencyFlag(),
			&ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to this file instead of stdout"},
		},
		Action: runGet,
	}
}

func runGet(c *ucli.Context) error {
	oid, err := oidArg(c)
	if err != nil {
		return err
	}
	cl, level, err := clientFor(c)
	if err != nil {
		return err
	}
	body, _, err := cl.Get(c.Context, oid, level)
	if err != nil {
		return err
	}
	defer body.Close()
	if out := c.String("output"); out != "" {
		// Renamed into place only after the body verified: a failed get
		// leaves no partial file. The new file keeps an existing one's
		// mode (a 0600 file stays private).
		mode := os.FileMode(0o644)
		if fi, err := os.Stat(out); err == nil {
			mode = fi.Mode().Perm()
		}
		return atomicfile.Write(out, mode, body)
	}
	_, err = io.Copy(c.App.Writer, body)
	return err
}

func headCommand() *ucli.Command {
	return oidCommand("head", "print an object's size if it exists", func(ctx context.Context, cl *client.Client, oid api.OID, level api.Consistency) (string, error) {
		size, err := cl.Head(ctx, oid, level)
		return fmt.Sprintf("%s size=%d", oid, size), err
	})
}

func deleteCommand() *ucli.Command {
	return oidCommand("delete", "delete an object (a later put stores it again)", func(ctx context.Context, cl *client.Client, oid api.OID, level api.Consistency) (string, error) {
		rec, err := cl.Delete(ctx, oid, level)
		return fmt.Sprintf("%s deleted existed=%t acked=%s", oid, rec.Existed, strings.Join(rec.Acked, ",")), err
	})
}

// oidCommand is a command that takes one OID and a consistency flag and
// prints one line.
func oidCommand(name, usage string, run func(context.Context, *client.Client, api.OID, api.Consistency) (string, error)) *ucli.Command {
	return &ucli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "OID",
		Flags:     []ucli.Flag{consistencyFlag()},
		Action: func(c *ucli.Context) error {
			oid, err := oidArg(c)
			if err != nil {
				return err
			}
			cl, level, err := clientFor(c)
			if err != nil {
				return err
			}
			line, err := run(c.Context, cl, oid, level)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, line)
			return nil
		},
	}
}

func oidArg(c *ucli.Context) (api.OID, error) {
	if c.NArg() != 1 {
		return api.OID{}, usagef("%s takes one argument, the OID; flags go before it", c.Command.Name)
	}
	return api.ParseOID(c.Args().First())
}

func clientFor(c *ucli.Context) (*client.Client, api.Consistency, error) {
	level, err := api.ParseConsistency(c.String("consistency"))
	if err != nil {
		return nil, "", usageError{err}
	}
	cl, err := newClient(c, client.Config{Endpoint: c.String("endpoint")})
	if err != nil {
		return nil, "", err
	}
	return cl, level, nil
}
