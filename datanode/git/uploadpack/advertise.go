package uploadpack

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// Agent is the agent= capability this package advertises.
const Agent = "stratum/1"

// v0Capabilities are the protocol v0 capabilities, sent on the first ref.
// multi_ack (without _detailed), side-band (1000-byte) and no-done are not
// offered: every Git since 1.6 picks the detailed and 64k variants.
var v0Capabilities = []string{
	"multi_ack_detailed", "thin-pack", "side-band-64k", "ofs-delta", "shallow",
	"deepen-since", "deepen-not", "deepen-relative", "no-progress", "include-tag",
	"allow-tip-sha1-in-want", "allow-reachable-sha1-in-want", "filter", "object-format=sha1",
}

// Advertise writes the upload-pack part of the answer to
// `GET info/refs?service=git-upload-pack`, after the "# service=" header
// the HTTP layer writes. For protocol v0 (v2 false) it is the ref
// advertisement: HEAD (see the package doc) and every ref with its
// capabilities, annotated tags followed by their peeled "^{}" line; an
// empty repository advertises "capabilities^{}". For v2 it is the
// capability advertisement; refs come later, from an ls-refs command.
func Advertise(ctx context.Context, w io.Writer, b backend.Backend, repo string, v2 bool) error {
	pw := pktline.NewWriter(w)
	if v2 {
		return advertiseV2(pw)
	}
	rs, err := loadRefs(newObjects(ctx, b), repo, true)
	if err != nil {
		pw.WriteError(errText(err))
		return err
	}
	return advertiseV0(pw, rs)
}

func advertiseV2(pw *pktline.Writer) error {
	for _, l := range []string{"version 2", "agent=" + Agent, "ls-refs", "fetch=shallow wait-for-done filter", "object-format=sha1"} {
		if err := pw.WriteString(l + "\n"); err != nil {
			return err
		}
	}
	return pw.Flush()
}

func advertiseV0(pw *pktline.Writer, rs *refSet) error {
	caps := strings.Join(v0Capabilities, " ")
	if rs.headName != "" {
		caps += " symref=HEAD:" + rs.headName
	}
	caps += " agent=" + Agent
	var lines []string
	if rs.headName != "" {
		lines = append(lines, rs.headID.String()+" HEAD")
	}
	for _, r := range rs.refs {
		lines = append(lines, r.id.String()+" "+r.name)
		if r.peeled != nil {
			lines = append(lines, r.peeled.String()+" "+r.name+"^{}")
		}
	}
	if len(lines) == 0 {
		lines = append(lines, strings.Repeat("0", 40)+" capabilities^{}")
	}
	lines[0] += "\x00" + caps
	for _, l := range lines {
		if err := pw.WriteString(l + "\n"); err != nil {
			return err
		}
	}
	return pw.Flush()
}

// errText is the message a client prints for err: Git's wording for the
// errors this package makes, "upload-pack: " and the error otherwise.
func errText(err error) string {
	var ge *gitError
	if errors.As(err, &ge) {
		return ge.msg
	}
	return "upload-pack: " + err.Error()
}
