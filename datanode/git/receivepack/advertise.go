package receivepack

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// Agent is the agent capability's value: Git logs it, and it tells a
// support engineer reading a client trace which server answered.
const Agent = "stratum/receivepack"

// Capabilities are what Advertise offers, in Git's wording
// (gitprotocol-capabilities.txt). Each is honoured by Serve.
var Capabilities = []string{
	"report-status", "delete-refs", "ofs-delta", "side-band-64k", "quiet",
	"atomic", "push-options", "object-format=sha1", "agent=" + Agent,
}

// Advertise writes receive-pack's v0 ref advertisement of repo to w: every
// ref as `<oid> <name>`, the capabilities after a NUL on the first line,
// then a flush packet. A repository with no refs advertises the zero ID
// under the name `capabilities^{}`, as Git does, so the client still learns
// the capabilities. The caller writes the smart-HTTP preamble
// (`# service=git-receive-pack` and a flush) before it; w is written with
// one pkt-line per ref, so a buffered w is the caller's choice.
func Advertise(ctx context.Context, w io.Writer, b backend.Backend, repo string) error {
	if err := api.ValidateRepo(repo); err != nil {
		return fmt.Errorf("receivepack: %w", err)
	}
	refs, err := b.Refs(ctx, repo)
	if err != nil {
		return fmt.Errorf("receivepack: refs of %s: %w", repo, err)
	}
	refs = slices.DeleteFunc(refs, func(r backend.Ref) bool { return clonepack.Hidden(r.Name) })
	pw := pktline.NewWriter(w)
	caps := strings.Join(Capabilities, " ")
	if len(refs) == 0 {
		refs = []backend.Ref{{Name: "capabilities^{}", OID: api.ZeroOID}}
	}
	for i, r := range refs {
		var err error
		if i == 0 {
			err = pw.Writef("%s %s\x00%s\n", r.OID, r.Name, caps)
		} else {
			err = pw.Writef("%s %s\n", r.OID, r.Name)
		}
		if err != nil {
			return fmt.Errorf("receivepack: advertisement: %w", err)
		}
	}
	if err := pw.Flush(); err != nil {
		return fmt.Errorf("receivepack: advertisement: %w", err)
	}
	return nil
}
