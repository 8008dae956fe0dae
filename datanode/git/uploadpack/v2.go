package uploadpack

import (
	"context"
	"io"
	"strings"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// serveV2 answers the protocol v2 command of one request: a command
// section ("command=<name>", capability lines), a delim, the command's
// arguments, a flush. Over HTTP a request holds one command (as in Git's
// stateless serve), and nothing after it is read: an HTTP server may stop
// reading a request body once the response has started.
func serveV2(ctx context.Context, pr *pktline.Reader, w io.Writer, t target) error {
	cmd, eof, err := readCommand(pr)
	if err != nil {
		return fail(w, err)
	}
	if eof {
		return nil
	}
	args, err := readArgs(pr)
	if err != nil {
		return fail(w, err)
	}
	switch cmd {
	case "ls-refs":
		return lsRefs(ctx, w, t.b, t.repo, args)
	case "fetch":
		return fetchV2(ctx, w, t, args)
	}
	return fail(w, protocolErr("unknown command %q", cmd))
}

// readCommand reads the command section. The capabilities a client may
// send are accepted (agent, session-id, server-option) or checked
// (object-format, sha1 only).
func readCommand(pr *pktline.Reader) (cmd string, eof bool, err error) {
	for {
		k, line, end, err := readLine(pr)
		switch {
		case err != nil:
			return "", false, err
		case end || (k == pktline.Flush && cmd == ""):
			return "", true, nil
		case k == pktline.Delim || k == pktline.Flush:
			if cmd == "" {
				return "", false, protocolErr("no command= line")
			}
			return cmd, false, nil
		}
		if err := commandLine(line, &cmd); err != nil {
			return "", false, err
		}
	}
}

func commandLine(line string, cmd *string) error {
	key, val, _ := strings.Cut(line, "=")
	switch key {
	case "command":
		*cmd = val
	case "object-format":
		if val != "sha1" {
			return protocolErr("object-format %q is not supported (sha1 only)", val)
		}
	case "agent", "session-id", "server-option":
	default:
		return protocolErr("unknown capability '%s'", line)
	}
	return nil
}

// readArgs reads a command's arguments up to the flush.
func readArgs(pr *pktline.Reader) ([]string, error) {
	var args []string
	for {
		k, line, eof, err := readLine(pr)
		if err != nil {
			return nil, err
		}
		if eof || k == pktline.Flush {
			return args, nil
		}
		if k != pktline.Data {
			return nil, protocolErr("unexpected %s packet in arguments", k)
		}
		args = append(args, line)
	}
}

// lsRefs lists the refs: HEAD first (with symrefs, its symref-target),
// then every ref matching a ref-prefix (all without one), with "peeled:"
// for annotated tags when asked.
func lsRefs(ctx context.Context, w io.Writer, b backend.Backend, repo string, args []string) error {
	var symrefs, peel bool
	var prefixes []string
	for _, a := range args {
		switch {
		case a == "symrefs":
			symrefs = true
		case a == "peel":
			peel = true
		case a == "unborn":
		case strings.HasPrefix(a, "ref-prefix "):
			prefixes = append(prefixes, a[len("ref-prefix "):])
		default:
			return fail(w, protocolErr("unexpected line: '%s'", a))
		}
	}
	rs, err := loadRefs(newObjects(ctx, b), repo, peel)
	if err != nil {
		return fail(w, err)
	}
	pw := pktline.NewWriter(w)
	if rs.headName != "" && matchPrefix("HEAD", prefixes) {
		line := rs.headID.String() + " HEAD"
		if symrefs {
			line += " symref-target:" + rs.headName
		}
		pw.WriteString(line + "\n")
	}
	for _, r := range rs.refs {
		if !matchPrefix(r.name, prefixes) {
			continue
		}
		line := r.id.String() + " " + r.name
		if peel && r.peeled != nil {
			line += " peeled:" + r.peeled.String()
		}
		if err := pw.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	return pw.Flush()
}

func matchPrefix(name string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func parseV2Fetch(args []string) (*fetchRequest, error) {
	req := &fetchRequest{sideband: true}
	for _, a := range args {
		if err := req.parseV2Arg(a); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func (r *fetchRequest) parseV2Arg(a string) error {
	if ok, err := r.parseShallowArg(a); ok {
		return err
	}
	flags := map[string]*bool{
		"done": &r.done, "wait-for-done": &r.waitForDone, "no-progress": &r.noProgress,
		"include-tag": &r.includeTag, "thin-pack": new(bool), "ofs-delta": &r.ofsDelta,
	}
	if p, ok := flags[a]; ok {
		*p = true
		return nil
	}
	switch {
	case strings.HasPrefix(a, "want "):
		id, err := parseOID(a, "want ")
		r.wants = append(r.wants, id)
		return err
	case strings.HasPrefix(a, "have "):
		id, err := parseOID(a, "have ")
		r.haves = append(r.haves, id)
		return err
	}
	return protocolErr("unexpected line: '%s'", a)
}

// fetchV2 answers a v2 fetch: with haves and no "done", an acknowledgments
// section (ACK per common have, or NAK; "ready" when the wants reach what
// the client has), ending the response unless ready; then the shallow-info
// section when shallow was involved, and the packfile section.
func fetchV2(ctx context.Context, w io.Writer, t target, args []string) error {
	req, err := parseV2Fetch(args)
	if err != nil {
		return fail(w, err)
	}
	if len(req.wants) == 0 && !req.waitForDone {
		return nil
	}
	f, err := newFetch(ctx, t, req)
	if err != nil {
		return fail(w, err)
	}
	pw := pktline.NewWriter(w)
	if len(req.haves) > 0 && !req.done {
		ready, err := f.acksV2(w, pw)
		if err != nil || !ready {
			return err
		}
	}
	if req.deepens() || len(f.plan.grafts) > 0 {
		pw.WriteString("shallow-info\n")
		writeShallowInfo(pw, f.plan)
		pw.Delim()
	}
	pw.WriteString("packfile\n")
	out := newOutput(w, true, !req.noProgress)
	if err := f.sendPack(out); err != nil {
		out.fail(err)
		return err
	}
	return pw.Flush()
}

// acksV2 writes the acknowledgments section; it reports whether the pack
// follows (ready, and a delim written) or the response ended (a flush).
func (f *fetch) acksV2(w io.Writer, pw *pktline.Writer) (bool, error) {
	ready := false
	if !f.req.waitForDone {
		var err error
		if ready, err = f.readyToSend(); err != nil {
			return false, fail(w, err)
		}
	}
	pw.WriteString("acknowledgments\n")
	if len(f.common) == 0 {
		pw.WriteString("NAK\n")
	}
	for _, id := range f.common {
		pw.WriteString("ACK " + id.String() + "\n")
	}
	if !ready {
		return false, pw.Flush()
	}
	pw.WriteString("ready\n")
	return true, pw.Delim()
}

// writeShallowInfo writes the shallow and unshallow lines of a plan.
func writeShallowInfo(pw *pktline.Writer, p *shallowPlan) error {
	for _, id := range p.shallow {
		if err := pw.WriteString("shallow " + id.String() + "\n"); err != nil {
			return err
		}
	}
	for _, id := range p.unshallow {
		if err := pw.WriteString("unshallow " + id.String() + "\n"); err != nil {
			return err
		}
	}
	return nil
}
