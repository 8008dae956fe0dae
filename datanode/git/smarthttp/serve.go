package smarthttp

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// DefaultMaxUploadRequest bounds an upload-pack request body (wants,
// haves, arguments; after gzip) when Protocol.MaxUploadRequest is zero:
// 10 MiB, git http-backend's http.maxRequestBuffer. A push's body is the
// pack, which receive-pack bounds itself.
const DefaultMaxUploadRequest = 10 << 20

// Protocol is the Git side the caller plugs in: the upload-pack and
// receive-pack services (datanode/git/uploadpack and receivepack), each
// writing its answer to w as it goes. A service that fails once it has
// written must have said so in Git's own terms (ERR packet, unpack or ng
// line, band 3); its returned error is only logged.
type Protocol struct {
	// AdvertiseUpload writes upload-pack's advertisement: the refs and
	// capabilities (v0), or the capabilities (v2).
	AdvertiseUpload func(ctx context.Context, w io.Writer, b backend.Backend, repo string, v2 bool) error
	// ServeUpload answers one upload-pack request (v0 stateless RPC, or
	// one v2 command).
	ServeUpload func(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string, v2 bool) error
	// AdvertiseReceive writes receive-pack's refs and capabilities.
	AdvertiseReceive func(ctx context.Context, w io.Writer, b backend.Backend, repo string) error
	// ServeReceive answers one push: commands and a pack in, its report out.
	ServeReceive func(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string) error
	// MaxUploadRequest bounds an upload-pack request body after gzip; if
	// zero, DefaultMaxUploadRequest.
	MaxUploadRequest int64
}

// Advertise writes the body of an info/refs answer: in v0 the
// `# service=git-...` packet and a flush, as git http-backend does, then
// the service's advertisement. An error means nothing useful was written:
// the caller answers it as an HTTP error (ErrorText).
func (p Protocol) Advertise(ctx context.Context, w io.Writer, b backend.Backend, req Request) error {
	if !req.Advertise {
		return fmt.Errorf("%w: Advertise of a POST request", api.ErrBadRequest)
	}
	if !req.V2 {
		pw := pktline.NewWriter(w)
		if err := pw.WriteString("# service=" + string(req.Service) + "\n"); err != nil {
			return err
		}
		if err := pw.Flush(); err != nil {
			return err
		}
	}
	if req.Service == ReceivePack {
		return p.AdvertiseReceive(ctx, w, b, req.Repo)
	}
	return p.AdvertiseUpload(ctx, w, b, req.Repo, req.V2)
}

// Body returns the POST body to hand to Serve: decompressed when gzip
// (the gzip header is read now, so a body that is not gzip fails here, as
// a 400, before any answer is sent), and bounded for upload-pack.
func (p Protocol) Body(req Request, body io.Reader) (io.Reader, error) {
	if req.Gzip {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("%w: Content-Encoding: gzip, but the body is not gzip: %v", api.ErrBadRequest, err)
		}
		body = zr
	}
	if req.Service == UploadPack {
		max := p.MaxUploadRequest
		if max == 0 {
			max = DefaultMaxUploadRequest
		}
		body = &limitReader{r: body, left: max, max: max}
	}
	return body, nil
}

// Serve answers a POST: it runs the service over body (from Body) and
// writes its answer to w.
func (p Protocol) Serve(ctx context.Context, body io.Reader, w io.Writer, b backend.Backend, req Request) error {
	if req.Advertise {
		return fmt.Errorf("%w: Serve of an info/refs request", api.ErrBadRequest)
	}
	if req.Service == ReceivePack {
		return p.ServeReceive(ctx, body, w, b, req.Repo)
	}
	return p.ServeUpload(ctx, body, w, b, req.Repo, req.V2)
}

// limitReader fails, rather than ends, past its limit: a request cut off
// silently would read as a truncated one.
type limitReader struct {
	r         io.Reader
	left, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("%w: the upload-pack request is over %d bytes", api.ErrTooLarge, l.max)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// ErrorText is how an error is answered before any Git data is sent: the
// HTTP status of its api sentinel and a text/plain body, which git prints
// as `remote: <line>` before its own `fatal:` line. A 401 also needs the
// WWW-Authenticate header (Challenge) so that git asks its credential
// helper for the token.
func ErrorText(err error) (status int, body string) {
	status, _ = api.StatusOf(err)
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if status >= http.StatusInternalServerError && !errors.Is(err, api.ErrQuorumNotReached) && !errors.Is(err, api.ErrNotReady) {
		msg = "stratum: internal error: " + msg
	}
	return status, msg + "\n"
}

// Challenge is the WWW-Authenticate value of a 401: HTTP basic auth, whose
// password is an API token (any user name).
const Challenge = `Basic realm="stratum"`
