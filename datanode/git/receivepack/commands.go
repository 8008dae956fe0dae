package receivepack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// Command is one ref update of a push: Name from Old to New, each 40
// lowercase hex digits; an all-zero Old creates the ref, an all-zero New
// deletes it.
type Command struct {
	Name, Old, New string
	// Status is "ok" once applied, else the reason sent in
	// `ng <ref> <reason>`.
	Status string
}

func (c Command) isDelete() bool { return api.IsZeroOID(c.New) }

// request is what precedes the pack: commands, the client's capabilities
// and its push options.
type request struct {
	cmds    []Command
	caps    map[string]string // name -> value ("" for a bare capability)
	options []string
}

func (q *request) has(capability string) bool { _, ok := q.caps[capability]; return ok }

// readRequest reads the command list and, if the client asked for them,
// the push options. No command at all (a lone flush, or nothing) is git's
// authentication probe, answered with nothing.
func readRequest(pr *pktline.Reader, l Limits) (request, error) {
	q := request{caps: map[string]string{}}
	for {
		k, p, err := pr.Read()
		if errors.Is(err, io.EOF) && len(q.cmds) == 0 {
			return q, nil
		}
		if err != nil {
			return q, fmt.Errorf("%w: command list: %w", ErrProtocol, err)
		}
		if k == pktline.Flush {
			break
		}
		if k != pktline.Data {
			return q, fmt.Errorf("%w: command list: unexpected %s packet", ErrProtocol, k)
		}
		if err := q.addCommand(p, l); err != nil {
			return q, err
		}
	}
	if len(q.cmds) > 0 && q.has("push-options") {
		return q, q.readOptions(pr, l)
	}
	return q, nil
}

// addCommand parses `old new name`, with `\0capabilities` on the first.
func (q *request) addCommand(p []byte, l Limits) error {
	line := string(bytes.TrimSuffix(p, []byte("\n")))
	if len(q.cmds) == 0 {
		var caps string
		line, caps, _ = strings.Cut(line, "\x00")
		if err := q.setCaps(caps); err != nil {
			return err
		}
	}
	switch {
	case strings.HasPrefix(line, "shallow "):
		return fmt.Errorf("%w: shallow push (the client's repository is shallow)", ErrUnsupported)
	case strings.HasPrefix(line, "push-cert"):
		return fmt.Errorf("%w: push certificates", ErrUnsupported)
	case len(q.cmds) >= l.MaxCommands:
		return fmt.Errorf("%w: more than %d ref updates in one push", ErrProtocol, l.MaxCommands)
	}
	f := strings.SplitN(line, " ", 3)
	if len(f) != 3 || !isSHA1Hex(f[0]) || !isSHA1Hex(f[1]) {
		return fmt.Errorf("%w: command %d: %.120q, want \"<old-id> <new-id> <ref>\"", ErrProtocol, len(q.cmds)+1, line)
	}
	q.cmds = append(q.cmds, Command{Old: f[0], New: f[1], Name: f[2]})
	return nil
}

// setCaps records the client's capabilities; it refuses an object format
// other than SHA-1, which this server cannot store.
func (q *request) setCaps(s string) error {
	for _, c := range strings.Fields(s) {
		name, value, _ := strings.Cut(c, "=")
		q.caps[name] = value
	}
	if f, ok := q.caps["object-format"]; ok && f != "sha1" {
		return fmt.Errorf("%w: object-format=%.20s (only sha1)", ErrUnsupported, f)
	}
	return nil
}

// readOptions reads push options up to their flush packet.
func (q *request) readOptions(pr *pktline.Reader, l Limits) error {
	for {
		k, p, err := pr.Read()
		if err != nil {
			return fmt.Errorf("%w: push options: %w", ErrProtocol, err)
		}
		if k == pktline.Flush {
			return nil
		}
		if k != pktline.Data {
			return fmt.Errorf("%w: push options: unexpected %s packet", ErrProtocol, k)
		}
		if len(q.options) >= l.MaxPushOptions {
			return fmt.Errorf("%w: more than %d push options", ErrProtocol, l.MaxPushOptions)
		}
		q.options = append(q.options, string(bytes.TrimSuffix(p, []byte("\n"))))
	}
}

// isSHA1Hex reports whether s is 40 lowercase hex digits (the zero ID too).
func isSHA1Hex(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkCommands gives a Status to each command refused before any work:
// a name Git would refuse, a ref named twice. It reports whether all pass.
func checkCommands(cmds []Command) bool {
	seen := make(map[string]bool, len(cmds))
	ok := true
	for i := range cmds {
		c := &cmds[i]
		switch {
		case api.ValidateRefName(c.Name) != nil:
			c.Status = "funny refname"
		case clonepack.Hidden(c.Name):
			c.Status = "refs/stratum/ is reserved for stratum"
		case seen[c.Name]:
			c.Status = "ref named twice in one push"
		}
		seen[c.Name] = true
		ok = ok && c.Status == ""
	}
	return ok
}
