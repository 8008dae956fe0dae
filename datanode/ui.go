package datanode

import (
	"bytes"
	_ "embed"
	"html/template"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
)

// The status page: server-rendered from ui.html, embedded in the binary,
// no scripts and no external assets; it refreshes itself every 5 seconds.
//
//go:embed ui.html
var uiSource string

var uiTemplate = template.Must(template.New("ui").Parse(uiSource))

// uiPage is what the template renders.
type uiPage struct {
	Status   api.StatusDoc
	Cluster  api.ClusterDoc
	Draining bool
	Errors   []recentError
}

func (n *Node) serveUI(ctx *fasthttp.RequestCtx) error {
	page := uiPage{Status: n.Status(), Cluster: n.Cluster(ctx), Draining: n.draining.Load(), Errors: n.errors.list()}
	var buf bytes.Buffer
	if err := uiTemplate.Execute(&buf, page); err != nil {
		return err
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(buf.Bytes())
	return nil
}

// recentError is one line of the status page's error list.
type recentError struct {
	Time    time.Time
	Message string
}

// errorLog keeps the last 20 server-side errors for the status page. Its
// mutex is taken alone, never during I/O.
type errorLog struct {
	mu    sync.Mutex
	items []recentError
}

func (l *errorLog) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, recentError{Time: time.Now(), Message: msg})
	if len(l.items) > 20 {
		l.items = l.items[len(l.items)-20:]
	}
}

// list returns the errors, newest first.
func (l *errorLog) list() []recentError {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]recentError, len(l.items))
	for i, e := range l.items {
		out[len(out)-1-i] = e
	}
	return out
}
