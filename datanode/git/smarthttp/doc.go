// Package smarthttp is the HTTP face of Git's smart protocol
// (gitprotocol-http(5)): it turns the three requests a stock `git clone`,
// `fetch` or `push` makes into calls of the upload-pack and receive-pack
// services, and nothing else. It knows no server library: a data node
// parses a request with ParseRoute and Request.CheckHeaders, sets the
// headers Request.ResponseHeaders names, and streams the body through
// Protocol.Advertise or Protocol.Serve over plain io.Reader and io.Writer
// (datanode/gitroutes.go is the fasthttp adapter).
//
// # The three requests
//
//	GET  /git/{repo}/info/refs?service=git-upload-pack     fetch: the refs (v0) or the capabilities (v2)
//	GET  /git/{repo}/info/refs?service=git-receive-pack    push: the refs and the push capabilities
//	POST /git/{repo}/git-upload-pack                       fetch: wants and haves in, a pack out
//	POST /git/{repo}/git-receive-pack                      push: commands and a pack in, report-status out
//
// {repo} is the ref API's repository name (api.ValidateRepo): it may
// contain '/', so the route is told apart by its suffix. A client asks for
// protocol v2 with the header `Git-Protocol: version=2` (upload-pack only:
// Git 2.39 pushes with v0). A POST body may be gzip-compressed
// (`Content-Encoding: gzip`, what git sends for a large fetch request)
// and must carry the service's request content type, so that no HTML form
// (which can send only form and text types) can push from another site.
//
// # Caveats
//
// Once an HTTP 200 is sent the status cannot change: errors found later
// travel inside the Git stream (an ERR packet, an `unpack` or `ng` line,
// band 3 of the side band), which is the protocol packages' job. An
// advertisement is small (one line per ref) and is built before the status
// is chosen, so a failure to read the refs is a plain HTTP error that git
// prints as `remote: <message>`; a pack never is buffered.
//
// The `# service=` packet that starts an advertisement is sent in v0 only,
// as git http-backend does: a v2 advertisement starts with `version 2`.
package smarthttp
