package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/receivepack"
	"github.com/stratum-store/stratum/datanode/git/smarthttp"
	"github.com/stratum-store/stratum/datanode/git/uploadpack"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/requestid"
)

// This file mounts Git's smart HTTP protocol (datanode/git/smarthttp) on
// every data node, under /git/{repo}/ (docs/git.md). A Git request is
// served through the node's own public API: its backend.Client calls this
// node with the caller's token, so a fetch or a push is authorised,
// replicated and verified exactly as the caller's own API calls would be,
// and the node coordinates every object and ref call as usual.
//
// Access (auth.go, browser.go): the token may come as the basic-auth
// password (git's credential helpers send it so); fetching needs read
// scope, pushing write scope; a 401 carries a basic-auth challenge so git
// asks its credential helper. Errors before any Git data is sent are
// text/plain, which git prints as "remote: <message>".

// isGitPath reports whether a raw path is a Git route.
func isGitPath(path string) bool { return strings.HasPrefix(path, smarthttp.PathPrefix) }

// gitScope is the scope a Git route needs, and false for other paths. A
// path that is no valid Git route needs read scope: its error is answered
// only to a caller the node knows.
func gitScope(ctx *fasthttp.RequestCtx, path string) (string, bool) {
	if !isGitPath(path) {
		return "", false
	}
	req, err := smarthttp.ParseRoute(string(ctx.Method()), path, string(ctx.QueryArgs().Peek("service")))
	if err != nil {
		return api.ScopeRead, true
	}
	return req.Scope(), true
}

// gitRouteLabel is a Git path's metric label (never the repository).
func gitRouteLabel(path string) string { return smarthttp.RouteLabel(path) }

// refusedGit turns the JSON answer of a Git request that admit refused
// into what git prints: text, and a basic challenge on a 401.
func refusedGit(ctx *fasthttp.RequestCtx, path string, err error) {
	if isGitPath(path) {
		gitText(ctx, err)
	}
}

// writeGitError answers err as git wants it before any Git data: its
// status, a text/plain message, and a basic-auth challenge on a 401.
func (n *Router) writeGitError(ctx *fasthttp.RequestCtx, err error) {
	n.writeError(ctx, err) // logs it and sets the node's headers
	gitText(ctx, err)
}

func gitText(ctx *fasthttp.RequestCtx, err error) {
	status, body := smarthttp.ErrorText(err)
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(body)
	if status == fasthttp.StatusUnauthorized {
		ctx.Response.Header.Set("WWW-Authenticate", smarthttp.Challenge)
	}
}

// serveGit answers a Git route; it answers its own errors.
func (n *Router) serveGit(ctx *fasthttp.RequestCtx, path string) error {
	req, err := smarthttp.ParseRoute(string(ctx.Method()), path, string(ctx.QueryArgs().Peek("service")))
	if err == nil {
		err = req.CheckHeaders(string(ctx.Request.Header.ContentType()),
			string(ctx.Request.Header.Peek("Content-Encoding")), string(ctx.Request.Header.Peek("Git-Protocol")))
	}
	if err == nil && req.Advertise {
		err = n.gitAdvertise(ctx, req)
	} else if err == nil {
		err = n.gitServe(ctx, req)
	}
	if err != nil {
		n.writeGitError(ctx, err)
	}
	return nil
}

// gitAdvertise answers info/refs. The advertisement is one line per ref,
// built before the status is chosen, so a failure is a plain HTTP error.
func (n *Router) gitAdvertise(ctx *fasthttp.RequestCtx, req smarthttp.Request) error {
	cctx, cancel := context.WithTimeout(n.life, n.cfg.RequestTimeout)
	defer cancel()
	b, done, err := n.serviceBackend(ctx, req)
	if err != nil {
		return err
	}
	defer done()
	var buf bytes.Buffer
	if err := n.gitProtocol().Advertise(cctx, &buf, b, req); err != nil {
		return err
	}
	gitHeaders(ctx, req)
	ctx.SetBody(buf.Bytes())
	return nil
}

// gitServe answers a POST: the status is 200 from here on, and the
// service streams its answer (a pack, a report) while it reads the body.
func (n *Router) gitServe(ctx *fasthttp.RequestCtx, req smarthttp.Request) error {
	p := n.gitProtocol()
	body, err := p.Body(req, httpbody.Reader(ctx))
	if err != nil {
		return err
	}
	b, done, err := n.serviceBackend(ctx, req)
	if err != nil {
		return err
	}
	gitHeaders(ctx, req)
	id := requestid.Of(ctx) // the stream writer outlives ctx
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		// fasthttp runs this after the handler returned, in a goroutine of
		// its own, and lets it read the request body: it is counted in
		// n.inflight and bounded by RequestTimeout and the node's life.
		defer done()
		if !n.inflight.Add() {
			return
		}
		defer n.inflight.Done()
		cctx, cancel := context.WithTimeout(requestid.With(n.life, id), n.cfg.RequestTimeout)
		defer cancel()
		fw := &flushWriter{w: w, last: time.Now()}
		if err := p.Serve(cctx, body, fw, b, req); err != nil {
			n.logger.Warn("git request failed", "repo", req.Repo, "service", req.Service, "err", err)
		}
		w.Flush()
	})
	return nil
}

func gitHeaders(ctx *fasthttp.RequestCtx, req smarthttp.Request) {
	ctx.SetContentType(req.ContentType())
	for _, h := range req.ResponseHeaders() {
		ctx.Response.Header.Set(h[0], h[1])
	}
}

// gitProtocol plugs the Git services in. A push is bounded by the node's
// largest request body (Store.MaxObjectSize) and spools its pack in the
// node's spool directory, on the data disk.
func (n *Router) gitProtocol() smarthttp.Protocol {
	limits := receivepack.Limits{MaxPackBytes: n.cfg.Store.MaxObjectSize, MaxObjectSize: n.cfg.Store.MaxObjectSize, TempDir: n.spoolDir}
	return smarthttp.Protocol{
		AdvertiseUpload:  uploadpack.Advertise,
		ServeUpload:      uploadpack.Server{Cache: n.d.PackCache}.Serve,
		AdvertiseReceive: receivepack.Advertise,
		ServeReceive: func(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string) error {
			res, err := receivepack.Serve(ctx, r, w, b, repo, limits)
			n.logger.Info("git push", "repo", repo, "refs", len(res.Commands), "stored", res.Stored, "unpack", res.Unpack, "err", err)
			return err
		},
	}
}

// gitBackend is the caller's view of the cluster: this node's API with the
// caller's token. Its transport pools connections for the request's calls
// (a Git request makes one per batch); done closes them. With TLS it
// trusts the cluster's CA but presents no client certificate: a node
// certificate would make each call a node's, allowed whatever the
// caller's token says.
func (n *Router) gitBackend(ctx *fasthttp.RequestCtx) (b *backend.Client, done func(), err error) {
	scheme, tc := "http", (*tls.Config)(nil)
	if n.cfg.TLS != nil {
		scheme, tc = "https", n.cfg.PeerTLS.Clone()
		tc.Certificates, tc.GetClientCertificate = nil, nil
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}
	b, err = backend.NewClient(backend.ClientConfig{
		Endpoint: scheme + "://" + n.Addr(), Token: n.callerToken(ctx), Transport: tr,
		Timeout: n.cfg.RequestTimeout, MaxBatchObject: n.cfg.Store.LargeThreshold,
	})
	return b, tr.CloseIdleConnections, err
}

// serviceBackend is gitBackend, with a fetch's object reads in process
// (localReads) when req is upload-pack's, and a push's object writes in
// process (localWrites) when it is receive-pack's.
func (n *Router) serviceBackend(ctx *fasthttp.RequestCtx, req smarthttp.Request) (backend.Backend, func(), error) {
	client, done, err := n.gitBackend(ctx)
	if err != nil {
		return client, done, err
	}
	switch req.Service {
	case smarthttp.UploadPack:
		return localReads{Client: client, obj: n.obj}, done, nil
	case smarthttp.ReceivePack:
		return localWrites{Client: client, obj: n.obj, max: n.cfg.Store.LargeThreshold}, done, nil
	}
	return client, done, nil
}

// localWrites is a push's backend: the caller's Client, with the pushed
// objects' batch writes made in process by the object protocol
// (objects.Server.WriteMany at quorum: the same verification, grouping,
// replica calls and quorum rule as POST /v1/objects:put) instead of a
// loopback HTTP batch PUT to this very node, which serialised, parsed and
// copied every object once more. The route already checked the caller's
// write scope, and object writes have no finer rule. Objects above the
// batch limit, refs and everything else go through the Client as before.
type localWrites struct {
	*backend.Client
	obj *objects.Server
	max int64 // the store's LargeThreshold: larger objects are put alone
}

// Put stores objs as backend.Client.Put does (backend.Batches), the
// batches in process. It stops at the first failure, or once ctx is done.
func (b localWrites) Put(ctx context.Context, objs []backend.Object) error {
	return backend.Batches(objs, b.max, func(batch []backend.Object) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		in := make([]objects.BatchObject, len(batch))
		for i, o := range batch {
			in[i] = objects.BatchObject{OID: o.OID, Data: o.Data}
		}
		if err := b.obj.WriteMany(ctx, in, api.Quorum); err != nil {
			return fmt.Errorf("storing %d objects: %w", len(batch), err)
		}
		return nil
	}, func(o backend.Object) error { return b.Client.PutAlone(ctx, o) })
}

// localReads is a fetch's backend: the caller's Client, with object reads
// served in process by the object protocol (objects.Server.ReadMany at
// one) instead of a loopback HTTP batch GET to this very node. A fetch
// reads a linear history one commit per batch, so the round trip is most
// of a cold clone's server time. The route already checked the caller's
// read scope, and reads have no finer rule, so the reads are authorised
// as the API would authorise them. What ReadMany could not answer (an
// object that is not here, a large one) goes through the Client as before:
// a quorum read, or a read of the object alone.
type localReads struct {
	*backend.Client
	obj *objects.Server
}

// Get reads oids as backend.Client.Get does, the first round in process.
func (b localReads) Get(ctx context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	for len(oids) > 0 {
		k := min(len(oids), api.MaxBatchObjects)
		var again []api.OID
		b.obj.ReadMany(oids[:k], api.One, func(oid api.OID, data []byte, err error) {
			if err != nil {
				again = append(again, oid)
				return
			}
			fn(oid, data, nil)
		})
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(again) > 0 {
			if err := b.Client.Get(ctx, again, fn); err != nil {
				return err
			}
		}
		oids = oids[k:]
	}
	return nil
}

// callerToken is the token the caller proved itself with (authorize has
// checked it), as a bearer token or the basic-auth password; "" with auth
// off.
func (n *Router) callerToken(ctx *fasthttp.RequestCtx) string {
	if !n.cfg.Auth {
		return ""
	}
	h := string(ctx.Request.Header.Peek(api.HeaderAuthorization))
	if raw, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(raw)
	}
	if cred, ok := strings.CutPrefix(h, "Basic "); ok {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
			_, pw, _ := strings.Cut(string(b), ":")
			return strings.TrimSpace(pw)
		}
	}
	return ""
}

// flushWriter sends what the service wrote at least every 100 ms, so that
// progress and keep-alive packets reach git while a pack is being built,
// without a chunk per pkt-line.
type flushWriter struct {
	w    *bufio.Writer
	last time.Time
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil && time.Since(f.last) > 100*time.Millisecond {
		err, f.last = f.w.Flush(), time.Now()
	}
	return n, err
}

// Flush sends what is buffered now (a service may call it after a
// keep-alive packet).
func (f *flushWriter) Flush() error { f.last = time.Now(); return f.w.Flush() }
