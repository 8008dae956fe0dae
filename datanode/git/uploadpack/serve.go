package uploadpack

import (
	"context"
	"errors"
	"io"

	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/packcache"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// Serve answers the body of `POST git-upload-pack` read from r, writing the
// response to w: one protocol v2 command (ls-refs or fetch) when v2 is true,
// else one round of the v0 stateless negotiation (wants and haves; with
// "done", the pack). Errors are told to the client in Git's format (an ERR
// packet, or band 3 once the pack has started) and returned, wrapping
// ErrProtocol, ErrNotOurRef or ErrMissingObject when they are one of those.
func Serve(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string, v2 bool) error {
	return Server{}.Serve(ctx, r, w, b, repo, v2)
}

// Server answers upload-pack requests as Serve does, and serves a full
// clone (no haves in common, no shallow boundary, no filter) from Cache
// when it is set: the pack of the same tips written earlier, or, on a
// miss, the pack it writes, teed into the cache for the next clone.
type Server struct {
	Cache *packcache.Cache
}

// Serve answers one request, as the package's Serve.
func (s Server) Serve(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string, v2 bool) error {
	t := target{b: b, repo: repo, cache: s.Cache}
	if v2 {
		return serveV2(ctx, pktline.NewReader(r), w, t)
	}
	return serveV0(ctx, pktline.NewReader(r), w, t)
}

// target is what a request is about: the repository, the backend it is
// read through, and the pack cache (nil: none).
type target struct {
	b     backend.Backend
	repo  string
	cache *packcache.Cache
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
