package uploadpack

import (
	"context"
	"errors"
	"io"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// Serve answers the body of `POST git-upload-pack` read from r, writing the
// response to w: one protocol v2 command (ls-refs or fetch) when v2 is true,
// else one round of the v0 stateless negotiation (wants and haves; with
// "done", the pack). Errors are told to the client in Git's format (an ERR
// packet, or band 3 once the pack has started) and returned, wrapping
// ErrProtocol, ErrNotOurRef or ErrMissingObject when they are one of those.
func Serve(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string, v2 bool) error {
	if v2 {
		return serveV2(ctx, pktline.NewReader(r), w, b, repo)
	}
	return serveV0(ctx, pktline.NewReader(r), w, b, repo)
}

// fail sends err as an ERR packet and returns it.
func fail(w io.Writer, err error) error {
	pktline.NewWriter(w).WriteError(errText(err))
	return err
}

// readLine reads one data packet as a string without its newline; flush,
// delim and the end of the stream are reported in kind (io.EOF as a Flush
// with eof true).
func readLine(pr *pktline.Reader) (kind pktline.Kind, line string, eof bool, err error) {
	k, p, err := pr.ReadPacket()
	if errors.Is(err, io.EOF) {
		return pktline.Flush, "", true, nil
	}
	if err != nil {
		return k, "", false, protocolErr("reading the request: %v", err)
	}
	s := string(p)
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return k, s, false, nil
}
