package httpapi

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/series"
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
	Charts   []template.HTML
}

func (n *Router) serveUI(ctx *fasthttp.RequestCtx) error {
	page := uiPage{Status: n.Status(), Cluster: n.Cluster(ctx), Draining: n.rep.Draining(), Errors: n.errors.list(),
		Charts: renderCharts(n.samples.Ring().List(), time.Now())}
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

// A chart of the last series.Window: one line per series, drawn as inline
// SVG on the server (no script, no external asset).
type chart struct {
	id, title, unit string
	series          []chartSeries
}

type chartSeries struct {
	name   string
	values []float64 // one per sample
}

var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// renderCharts draws the status page's charts from the samples.
func renderCharts(samples []series.Sample, now time.Time) []template.HTML {
	pick := func(f func(series.Sample) float64) []float64 {
		out := make([]float64, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		return out
	}
	var nodes []string
	for _, s := range samples {
		for id := range s.Bytes {
			if !slices.Contains(nodes, id) {
				nodes = append(nodes, id)
			}
		}
	}
	slices.Sort(nodes)
	var bytes []chartSeries
	for _, id := range nodes {
		bytes = append(bytes, chartSeries{id, pick(func(s series.Sample) float64 { return float64(s.Bytes[id]) })})
	}
	charts := []chart{
		{"requests", "object PUT and GET per second, coordinated by this node", "/s", []chartSeries{
			{"PUT", pick(func(s series.Sample) float64 { return s.PutRate })}, {"GET", pick(func(s series.Sample) float64 { return s.GetRate })}}},
		{"latency", "object PUT and GET p99, this node", "ms", []chartSeries{
			{"PUT", pick(func(s series.Sample) float64 { return s.PutP99 * 1000 })}, {"GET", pick(func(s series.Sample) float64 { return s.GetP99 * 1000 })}}},
		{"errors", "5xx answers per second, this node", "/s", []chartSeries{{"5xx", pick(func(s series.Sample) float64 { return s.Errors })}}},
		{"bytes", "bytes stored per node", "B", bytes},
		{"repair", "repair: objects left and copied (this node's round)", "", []chartSeries{
			{"left", pick(func(s series.Sample) float64 { return float64(s.RepairRemaining) })},
			{"copied", pick(func(s series.Sample) float64 { return float64(s.RepairCopied) })}}},
	}
	out := make([]template.HTML, len(charts))
	for i, c := range charts {
		out[i] = c.svg(samples, now)
	}
	return out
}

const chartW, chartH, chartPad = 360.0, 110.0, 4.0

// svg draws c. The <svg> carries data-max, each line data-series,
// data-points and data-last, so a test can read what is drawn.
func (c chart) svg(samples []series.Sample, now time.Time) template.HTML {
	top := 0.0
	for _, s := range c.series {
		for _, v := range s.values {
			top = max(top, v)
		}
	}
	scale := top
	if scale == 0 {
		scale = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s <span class="muted">(max %s%s, last 15 min)</span></figcaption>`,
		template.HTMLEscapeString(c.title), fmtValue(top), c.unit)
	fmt.Fprintf(&b, `<svg id="chart-%s" data-max="%g" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s">`,
		c.id, top, chartW, chartH, chartW, chartH, template.HTMLEscapeString(c.title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%g" height="%g" fill="#fafafa" stroke="#ddd"/>`, chartW, chartH)
	start := now.Add(-series.Window)
	for i, s := range c.series {
		var pts []string
		for j, v := range s.values {
			x := chartW * float64(samples[j].At.Sub(start)) / float64(series.Window)
			y := chartH - chartPad - (chartH-2*chartPad)*v/scale
			pts = append(pts, strconv.FormatFloat(max(0, x), 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
		}
		last := 0.0
		if len(s.values) > 0 {
			last = s.values[len(s.values)-1]
		}
		fmt.Fprintf(&b, `<polyline class="series" data-series="%s" data-points="%d" data-last="%g" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`,
			template.HTMLEscapeString(s.name), len(pts), last, chartColors[i%len(chartColors)], strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="6" y="%g" font-size="11" fill="%s">%s %s%s</text>`,
			14+12*float64(i), chartColors[i%len(chartColors)], template.HTMLEscapeString(s.name), fmtValue(last), c.unit)
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

func fmtValue(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v == float64(int64(v)):
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
