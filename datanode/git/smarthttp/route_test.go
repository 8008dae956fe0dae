package smarthttp

import (
	"errors"
	"testing"

	"github.com/stratum-store/stratum/api"
)

func TestParseRoute(t *testing.T) {
	f := func(method, path, service string, want Request, wantErr error) {
		t.Helper()
		got, err := ParseRoute(method, path, service)
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) || got != want {
			t.Fatalf("ParseRoute(%s, %q, %q) = %+v, %v; want %+v, %v", method, path, service, got, err, want, wantErr)
		}
	}
	f("GET", "/git/demo/hello.git/info/refs", "git-upload-pack", Request{Repo: "demo/hello.git", Service: UploadPack, Advertise: true}, nil)
	f("HEAD", "/git/a/info/refs", "git-receive-pack", Request{Repo: "a", Service: ReceivePack, Advertise: true}, nil)
	f("POST", "/git/org/team/x.git/git-upload-pack", "", Request{Repo: "org/team/x.git", Service: UploadPack}, nil)
	f("POST", "/git/x/git-receive-pack", "ignored", Request{Repo: "x", Service: ReceivePack}, nil)
	// the repository name may itself end in a route's words
	f("POST", "/git/info/git-upload-pack/git-upload-pack", "", Request{Repo: "info/git-upload-pack", Service: UploadPack}, nil)

	f("GET", "/git/x/info/refs", "", Request{}, api.ErrBadRequest) // the dumb protocol
	f("GET", "/git/x/info/refs", "git-daemon", Request{}, api.ErrBadRequest)
	f("POST", "/git/x/info/refs", "git-upload-pack", Request{}, api.ErrMethodNotAllowed)
	f("GET", "/git/x/git-upload-pack", "", Request{}, api.ErrMethodNotAllowed)
	f("PUT", "/git/x/git-receive-pack", "", Request{}, api.ErrMethodNotAllowed)
	f("GET", "/git/x/HEAD", "", Request{}, api.ErrRouteNotFound)
	f("GET", "/git/x/objects/info/packs", "", Request{}, api.ErrRouteNotFound)
	f("GET", "/v1/x/info/refs", "git-upload-pack", Request{}, api.ErrRouteNotFound)
	f("GET", "/git//info/refs", "git-upload-pack", Request{}, api.ErrInvalidRepo)
	f("GET", "/git/info/refs", "git-upload-pack", Request{}, api.ErrRouteNotFound)
	f("GET", "/git/../etc/info/refs", "git-upload-pack", Request{}, api.ErrInvalidRepo)
	f("GET", "/git/a/refs/b/info/refs", "git-upload-pack", Request{}, api.ErrInvalidRepo)
	f("POST", "/git/a%2fb/git-upload-pack", "", Request{}, api.ErrInvalidRepo)
	f("POST", "/git/a//b/git-upload-pack", "", Request{}, api.ErrInvalidRepo)
}

func TestCheckHeaders(t *testing.T) {
	f := func(req Request, ct, ce, proto string, want Request, wantErr error) {
		t.Helper()
		err := req.CheckHeaders(ct, ce, proto)
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) || (err == nil && req != want) {
			t.Fatalf("CheckHeaders(%q, %q, %q) = %+v, %v; want %+v, %v", ct, ce, proto, req, err, want, wantErr)
		}
	}
	adv := Request{Repo: "x", Service: UploadPack, Advertise: true}
	up := Request{Repo: "x", Service: UploadPack}
	rp := Request{Repo: "x", Service: ReceivePack}
	f(adv, "", "", "", adv, nil)
	f(adv, "", "", "version=2", Request{Repo: "x", Service: UploadPack, Advertise: true, V2: true}, nil)
	f(adv, "", "", "object-format=sha1:version=2", Request{Repo: "x", Service: UploadPack, Advertise: true, V2: true}, nil)
	f(adv, "", "", "version=1", adv, nil)
	f(up, "application/x-git-upload-pack-request", "gzip", "version=2", Request{Repo: "x", Service: UploadPack, V2: true, Gzip: true}, nil)
	f(up, "application/x-git-upload-pack-request; charset=binary", "", "", up, nil)
	f(rp, "application/x-git-receive-pack-request", "", "version=2", rp, nil) // push is v0 only
	f(Request{Repo: "x", Service: ReceivePack, Advertise: true}, "", "", "version=2", Request{Repo: "x", Service: ReceivePack, Advertise: true}, nil)

	f(up, "application/x-git-receive-pack-request", "", "", up, api.ErrUnsupportedMediaType)
	f(rp, "text/plain", "", "", rp, api.ErrUnsupportedMediaType) // what a cross-site form may send
	f(rp, "application/x-www-form-urlencoded", "", "", rp, api.ErrUnsupportedMediaType)
	f(rp, "", "", "", rp, api.ErrUnsupportedMediaType)
	f(up, "application/x-git-upload-pack-request", "br", "", up, api.ErrUnsupportedMediaType)
}

func TestScopeAndLabels(t *testing.T) {
	f := func(method, path, service, wantScope, wantLabel string) {
		t.Helper()
		req, err := ParseRoute(method, path, service)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Scope(); got != wantScope {
			t.Fatalf("%s %s?service=%s: scope %q; want %q", method, path, service, got, wantScope)
		}
		if got := RouteLabel(path); got != wantLabel {
			t.Fatalf("RouteLabel(%q) = %q; want %q", path, got, wantLabel)
		}
	}
	f("GET", "/git/a/b.git/info/refs", "git-upload-pack", api.ScopeRead, "/git/{repo}/info/refs")
	f("POST", "/git/a/b.git/git-upload-pack", "", api.ScopeRead, "/git/{repo}/git-upload-pack")
	f("GET", "/git/a/b.git/info/refs", "git-receive-pack", api.ScopeWrite, "/git/{repo}/info/refs")
	f("POST", "/git/a/b.git/git-receive-pack", "", api.ScopeWrite, "/git/{repo}/git-receive-pack")
	if got := RouteLabel("/git/a/b.git/objects/12/3456"); got != "/git/other" {
		t.Fatalf("RouteLabel of a dumb-protocol path = %q; want /git/other", got)
	}
}
