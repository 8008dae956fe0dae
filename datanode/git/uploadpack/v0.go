package uploadpack

import (
	"context"
	"io"
	"strings"

	"github.com/stratum-store/stratum/datanode/git/object"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// serveV0 answers one stateless v0 request: "want" lines (the first with
// the client's capabilities), shallow and deepen lines, a flush, then
// "have" lines ending with a flush (another round follows) or "done" (send
// the pack).
func serveV0(ctx context.Context, pr *pktline.Reader, w io.Writer, t target) error {
	req, err := parseV0(pr)
	if err != nil {
		return fail(w, err)
	}
	if len(req.wants) == 0 {
		return nil // nothing wanted: git upload-pack answers nothing too
	}
	f, err := newFetch(ctx, t, req)
	if err != nil {
		return fail(w, err)
	}
	ready := false
	if req.multiAck && !req.done && len(f.common) > 0 {
		if ready, err = f.readyToSend(); err != nil {
			return fail(w, err)
		}
	}
	pw := pktline.NewWriter(w)
	if req.deepens() {
		if err := writeShallowInfo(pw, f.plan); err != nil {
			return err
		}
		if err := pw.Flush(); err != nil || req.wantsOnly {
			return err
		}
	}
	if err := f.acksV0(pw, ready); err != nil || !req.done {
		return err
	}
	out := newOutput(w, req.sideband, !req.noProgress)
	if err := f.sendPack(out); err != nil {
		out.fail(err)
		return err
	}
	if req.sideband {
		return pw.Flush()
	}
	return nil
}

func parseV0(pr *pktline.Reader) (*fetchRequest, error) {
	req := &fetchRequest{}
	for {
		k, line, eof, err := readLine(pr)
		if err != nil {
			return nil, err
		}
		if k == pktline.Flush || eof {
			break
		}
		if err := req.parseV0Want(line); err != nil {
			return nil, err
		}
	}
	return req, req.parseV0Haves(pr)
}

func (r *fetchRequest) parseV0Want(line string) error {
	if ok, err := r.parseShallowArg(line); ok {
		return err
	}
	if !strings.HasPrefix(line, "want ") {
		return protocolErr("protocol error, expected to get object ID, not '%s'", line)
	}
	hex, caps, _ := strings.Cut(line[len("want "):], " ")
	r.deepenRelative = r.deepenRelative || hasCap(caps, "deepen-relative")
	id, err := parseOID("want "+hex, "want ")
	if err != nil {
		return err
	}
	r.wants = append(r.wants, id)
	if len(r.wants) == 1 {
		r.multiAck = hasCap(caps, "multi_ack_detailed")
		r.sideband = hasCap(caps, "side-band-64k")
		r.noProgress = hasCap(caps, "no-progress")
		r.includeTag = hasCap(caps, "include-tag")
		r.ofsDelta = hasCap(caps, "ofs-delta")
	}
	return nil
}

// parseV0Haves reads the have lines up to a flush (r.done false) or "done".
// A body that ends right after the wants is a stateless client's first
// request of a shallow fetch: it wants the shallow list alone.
func (r *fetchRequest) parseV0Haves(pr *pktline.Reader) error {
	for first := true; ; first = false {
		k, line, eof, err := readLine(pr)
		r.wantsOnly = first && eof
		if err != nil || k == pktline.Flush || eof {
			return err
		}
		switch {
		case line == "done":
			r.done = true
			return nil
		case strings.HasPrefix(line, "have "):
			id, err := parseOID(line, "have ")
			if err != nil {
				return err
			}
			r.haves = append(r.haves, id)
		default:
			return protocolErr("expected SHA1 list, got '%s'", line)
		}
	}
}

// acksV0 answers the haves as Git's get_common_commits does with
// multi_ack_detailed: "ACK <oid> common" for each have the store holds,
// "ACK <oid> ready" once the wants reach what the client has, then "NAK"
// at the end of a round; after "done", "ACK <last common>" or "NAK". A
// client without multi_ack gets one "ACK" for its first common have.
// ready is readyToSend's answer, computed before anything was written.
func (f *fetch) acksV0(pw *pktline.Writer, ready bool) error {
	common := map[object.ID]bool{}
	for _, id := range f.common {
		common[id] = true
	}
	var last object.ID
	n := 0
	for _, id := range f.req.haves {
		if !common[id] {
			continue
		}
		last, n = id, n+1
		if f.req.multiAck {
			pw.WriteString("ACK " + id.String() + " common\n")
		} else if n == 1 {
			pw.WriteString("ACK " + id.String() + "\n")
		}
	}
	if f.req.done {
		if n == 0 {
			return pw.WriteString("NAK\n")
		}
		if f.req.multiAck {
			return pw.WriteString("ACK " + last.String() + "\n")
		}
		return nil
	}
	if ready {
		pw.WriteString("ACK " + last.String() + " ready\n")
	}
	return pw.WriteString("NAK\n")
}
