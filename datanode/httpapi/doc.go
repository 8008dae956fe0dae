// Package httpapi is a data node's HTTP side: the route table and the
// router that serves it, and the routes that belong to the node as a
// whole.
//
//	routes.go     the route table: path, methods, scope, labels; one entry per route
//	server.go     the fasthttp server, the router, error replies, the in-flight limit
//	auth.go       tokens, the cluster secret and client certificates
//	browser.go    cross-site refusals and the JSON content-type rule
//	info.go       health, readiness, ring, status and cluster documents
//	admin.go      drain and remove, through the control plane
//	metrics.go    the gauges next to package nodemetrics' counters; GET /metrics
//	ui.go         the status page (ui.html) and its charts (samples.go)
//	gitroutes.go  the Git gateway: smart HTTP over the public API
//
// The router, the access check, the in-flight limit and the metric
// labeller all read the one route table, so a route cannot be served
// without a rule, nor a rule name a path that is not served. The object,
// ref and repair routes are served by their packages (objects, refs,
// repair); a Router only admits and dispatches them.
//
// # Caveats
//
// fasthttp normalises ctx.Path() (it decodes %2f and resolves ".."):
// the router matches the raw request URI, and an OID or a repository
// name is judged as sent.
package httpapi
