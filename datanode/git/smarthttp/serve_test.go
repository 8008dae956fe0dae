package smarthttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
)

// echoProtocol is a stand-in for the two services (what this package
// does around them is under test, not them): advertisements name the
// service and version, Serve copies the body.
func echoProtocol() Protocol {
	return Protocol{
		AdvertiseUpload: func(_ context.Context, w io.Writer, _ backend.Backend, repo string, v2 bool) error {
			_, err := io.WriteString(w, "upload "+repo+map[bool]string{true: " v2", false: " v0"}[v2])
			return err
		},
		ServeUpload: func(_ context.Context, r io.Reader, w io.Writer, _ backend.Backend, _ string, _ bool) error {
			_, err := io.Copy(w, r)
			return err
		},
		AdvertiseReceive: func(_ context.Context, w io.Writer, _ backend.Backend, repo string) error {
			_, err := io.WriteString(w, "receive "+repo)
			return err
		},
		ServeReceive: func(_ context.Context, r io.Reader, w io.Writer, _ backend.Backend, _ string) error {
			_, err := io.Copy(w, r)
			return err
		},
	}
}

func TestAdvertiseWritesTheServiceHeaderInV0Only(t *testing.T) {
	f := func(req Request, want string) {
		t.Helper()
		var buf bytes.Buffer
		if err := echoProtocol().Advertise(context.Background(), &buf, nil, req); err != nil || buf.String() != want {
			t.Fatalf("Advertise(%+v) = %q, %v; want %q", req, buf.String(), err, want)
		}
	}
	f(Request{Repo: "a/b", Service: UploadPack, Advertise: true}, "001e# service=git-upload-pack\n0000upload a/b v0")
	f(Request{Repo: "a/b", Service: UploadPack, Advertise: true, V2: true}, "upload a/b v2")
	f(Request{Repo: "a/b", Service: ReceivePack, Advertise: true}, "001f# service=git-receive-pack\n0000receive a/b")
}

func TestBodyDecodesGzipAndBoundsUploadRequests(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("0009done\n0000"))
	zw.Close()
	p := echoProtocol()
	serve := func(req Request, body []byte) (string, error) {
		r, err := p.Body(req, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		err = p.Serve(context.Background(), r, &out, nil, req)
		return out.String(), err
	}
	f := func(req Request, body []byte, want string, wantErr error) {
		t.Helper()
		got, err := serve(req, body)
		if got != want || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("Serve(%+v) = %q, %v; want %q, %v", req, got, err, want, wantErr)
		}
	}
	f(Request{Repo: "x", Service: UploadPack, Gzip: true}, gz.Bytes(), "0009done\n0000", nil)
	f(Request{Repo: "x", Service: UploadPack}, []byte("0000"), "0000", nil)
	f(Request{Repo: "x", Service: UploadPack, Gzip: true}, []byte("0000"), "", api.ErrBadRequest)
	p.MaxUploadRequest = 8
	f(Request{Repo: "x", Service: UploadPack}, []byte("0009done\n"), "0009done", api.ErrTooLarge)
	f(Request{Repo: "x", Service: UploadPack}, []byte("0009don"), "0009don", nil)
	f(Request{Repo: "x", Service: ReceivePack}, []byte("a push is bounded by receive-pack"), "a push is bounded by receive-pack", nil)
}

func TestErrorText(t *testing.T) {
	f := func(err error, wantStatus int, wantBody string) {
		t.Helper()
		status, body := ErrorText(err)
		if status != wantStatus || body != wantBody {
			t.Fatalf("ErrorText(%v) = %d, %q; want %d, %q", err, status, body, wantStatus, wantBody)
		}
	}
	f(errors.Join(api.ErrForbidden, errors.New("token t1 (ci) lacks the write scope")), 403, api.ErrForbidden.Error()+" token t1 (ci) lacks the write scope\n")
	f(api.ErrUnsupportedMediaType, 415, api.ErrUnsupportedMediaType.Error()+"\n")
	f(errors.New("boom"), 500, "stratum: internal error: boom\n")
}

// TestHeadersMatchGitHTTPBackend runs stock git http-backend (the CGI
// program Debian's git ships) on a real repository and checks that this
// package answers with its content types, cache headers and v0/v2
// advertisement framing, and refuses the content types it refuses.
func TestHeadersMatchGitHTTPBackend(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "init", "-q", "--bare", filepath.Join(root, "r.git")).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	cgi := func(method, path, query, contentType, protocol string) (http.Header, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "git", "http-backend")
		cmd.Env = append(os.Environ(), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=t", "REQUEST_METHOD="+method,
			"PATH_INFO="+path, "QUERY_STRING="+query, "CONTENT_TYPE="+contentType, "GIT_PROTOCOL="+protocol, "CONTENT_LENGTH=0")
		out, err := cmd.Output()
		if err != nil && !bytes.Contains(out, []byte("\r\n\r\n")) { // an empty POST body fails after the headers
			t.Fatalf("git http-backend %s %s: %v", method, path, err)
		}
		head, body, _ := strings.Cut(string(out), "\r\n\r\n")
		h := http.Header{}
		for line := range strings.SplitSeq(head, "\r\n") {
			k, v, _ := strings.Cut(line, ": ")
			h.Add(k, v)
		}
		return h, body
	}
	for _, svc := range []Service{UploadPack, ReceivePack} {
		h, body := cgi("GET", "/r.git/info/refs", "service="+string(svc), "", "")
		req, err := ParseRoute("GET", "/git/r.git/info/refs", string(svc))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := req.ContentType(), h.Get("Content-Type"); got != want {
			t.Fatalf("%s advertisement content type %q; git http-backend sends %q", svc, got, want)
		}
		for _, kv := range req.ResponseHeaders() {
			if want := h.Get(kv[0]); kv[1] != want {
				t.Fatalf("%s: %s: %q; git http-backend sends %q", svc, kv[0], kv[1], want)
			}
		}
		var ours bytes.Buffer
		echoProtocol().Advertise(ctx, &ours, nil, req)
		if prefix := "001" + map[Service]string{UploadPack: "e", ReceivePack: "f"}[svc] + "# service=" + string(svc) + "\n0000"; !strings.HasPrefix(body, prefix) || !strings.HasPrefix(ours.String(), prefix) {
			t.Fatalf("%s v0 advertisement: git %q, ours %q; both should start %q", svc, body, ours.String(), prefix)
		}
	}
	_, body := cgi("GET", "/r.git/info/refs", "service=git-upload-pack", "", "version=2")
	if !strings.HasPrefix(body, "000eversion 2\n") {
		t.Fatalf("git http-backend's v2 advertisement %q; want it to start with the version line, no service header", body)
	}
	h, _ := cgi("POST", "/r.git/git-receive-pack", "", "text/plain", "")
	req := Request{Repo: "r.git", Service: ReceivePack}
	if err := req.CheckHeaders("text/plain", "", ""); !strings.HasPrefix(h.Get("Status"), "415") || !errors.Is(err, api.ErrUnsupportedMediaType) {
		t.Fatalf("POST with text/plain: git http-backend %q, ours %v; want 415 from both", h.Get("Status"), err)
	}
	h, _ = cgi("POST", "/r.git/git-upload-pack", "", "application/x-git-upload-pack-request", "")
	if req := (Request{Repo: "r.git", Service: UploadPack}); h.Get("Content-Type") != req.ContentType() {
		t.Fatalf("upload-pack result content type: git %q, ours %q", h.Get("Content-Type"), req.ContentType())
	}
}
