package smarthttp

import (
	"fmt"
	"mime"
	"strings"

	"github.com/stratum-store/stratum/api"
)

// PathPrefix is where every Git route starts.
const PathPrefix = "/git/"

// Service is one of Git's two smart services.
type Service string

// The services: upload-pack serves fetch and clone, receive-pack push.
const (
	UploadPack  Service = "git-upload-pack"
	ReceivePack Service = "git-receive-pack"
)

// The path suffixes after {repo}.
const (
	suffixInfoRefs = "/info/refs"
	suffixUpload   = "/" + string(UploadPack)
	suffixReceive  = "/" + string(ReceivePack)
)

// Request is what a Git request asks for, once ParseRoute and
// CheckHeaders accepted it.
type Request struct {
	// Repo is the repository name, valid for the ref API.
	Repo string
	// Service is the service asked for.
	Service Service
	// Advertise is true for GET info/refs, false for the POST.
	Advertise bool
	// V2 is true when the client asked for protocol v2 (upload-pack only).
	V2 bool
	// Gzip is true when the POST body is gzip-compressed.
	Gzip bool
}

// ParseRoute reads a Git route: method, the raw path (no query) and the
// service query parameter. Errors wrap api sentinels, so the caller answers
// with their status: ErrRouteNotFound (404) for a path that is no Git
// route, ErrMethodNotAllowed (405), ErrInvalidRepo (400) for a bad
// repository name, ErrBadRequest (400) for a missing or unknown service.
func ParseRoute(method, path, service string) (Request, error) {
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return Request{}, fmt.Errorf("%w: %.100q is not under %s", api.ErrRouteNotFound, path, PathPrefix)
	}
	var req Request
	var wantMethod string
	switch {
	case strings.HasSuffix(rest, suffixInfoRefs):
		req.Repo, req.Advertise, wantMethod = strings.TrimSuffix(rest, suffixInfoRefs), true, "GET"
		s, err := parseService(service)
		if err != nil {
			return Request{}, err
		}
		req.Service = s
	case strings.HasSuffix(rest, suffixUpload):
		req.Repo, req.Service, wantMethod = strings.TrimSuffix(rest, suffixUpload), UploadPack, "POST"
	case strings.HasSuffix(rest, suffixReceive):
		req.Repo, req.Service, wantMethod = strings.TrimSuffix(rest, suffixReceive), ReceivePack, "POST"
	default:
		return Request{}, fmt.Errorf("%w: %.100q: Git routes are %s{repo}/info/refs, /git-upload-pack and /git-receive-pack (only the smart protocol is served)",
			api.ErrRouteNotFound, path, PathPrefix)
	}
	if method != wantMethod && !(wantMethod == "GET" && method == "HEAD") {
		return Request{}, fmt.Errorf("%w: %s takes %s, not %s", api.ErrMethodNotAllowed, path, wantMethod, method)
	}
	if err := api.ValidateRepo(req.Repo); err != nil {
		return Request{}, err
	}
	return req, nil
}

func parseService(s string) (Service, error) {
	switch Service(s) {
	case UploadPack, ReceivePack:
		return Service(s), nil
	case "":
		return "", fmt.Errorf("%w: info/refs needs ?service=git-upload-pack or git-receive-pack: only Git's smart protocol is served, not the dumb one", api.ErrBadRequest)
	}
	return "", fmt.Errorf("%w: unknown service %.60q; want git-upload-pack or git-receive-pack", api.ErrBadRequest, s)
}

// Scope is the token scope the request needs: read to fetch, write to push
// (the advertisement of receive-pack too, so that git learns it may not
// push before it sends a pack).
func (r Request) Scope() string {
	if r.Service == ReceivePack {
		return api.ScopeWrite
	}
	return api.ScopeRead
}

// CheckHeaders reads the request headers that matter: a POST's content
// type must be the service's request type (415 otherwise, as git
// http-backend answers), its content encoding gzip or none (415), and
// Git-Protocol may ask for version 2 (honoured for upload-pack).
func (r *Request) CheckHeaders(contentType, contentEncoding, gitProtocol string) error {
	if !r.Advertise {
		want := "application/x-" + string(r.Service) + "-request"
		if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != want {
			return fmt.Errorf("%w: %s takes Content-Type: %s, got %.100q", api.ErrUnsupportedMediaType, r.Service, want, contentType)
		}
		switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
		case "", "identity":
		case "gzip", "x-gzip":
			r.Gzip = true
		default:
			return fmt.Errorf("%w: Content-Encoding %.60q; want gzip or none", api.ErrUnsupportedMediaType, contentEncoding)
		}
	}
	r.V2 = r.Service == UploadPack && wantsV2(gitProtocol)
	return nil
}

// wantsV2 reads a Git-Protocol header: colon-separated key=value
// parameters (gitprotocol-http(5)), of which version=2 asks for v2.
func wantsV2(h string) bool {
	for p := range strings.SplitSeq(h, ":") {
		if strings.TrimSpace(p) == "version=2" {
			return true
		}
	}
	return false
}

// ContentType is the response's content type.
func (r Request) ContentType() string {
	if r.Advertise {
		return "application/x-" + string(r.Service) + "-advertisement"
	}
	return "application/x-" + string(r.Service) + "-result"
}

// ResponseHeaders are the headers of a successful answer, besides the
// content type: no cache may keep it (what git http-backend sends), since
// refs change under the same URL.
func (r Request) ResponseHeaders() [][2]string {
	return [][2]string{
		{"Cache-Control", "no-cache, max-age=0, must-revalidate"},
		{"Pragma", "no-cache"},
		{"Expires", "Fri, 01 Jan 1980 00:00:00 GMT"},
	}
}

// RouteLabel names a Git path's route for metric labels: one of four
// fixed values, whatever the repository.
func RouteLabel(path string) string {
	switch {
	case strings.HasSuffix(path, suffixInfoRefs):
		return PathPrefix + "{repo}" + suffixInfoRefs
	case strings.HasSuffix(path, suffixUpload):
		return PathPrefix + "{repo}" + suffixUpload
	case strings.HasSuffix(path, suffixReceive):
		return PathPrefix + "{repo}" + suffixReceive
	}
	return PathPrefix + "other"
}
