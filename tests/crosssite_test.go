package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// rawJSONRequest POSTs body to path on addr with Content-Type:
// application/json, as sent, and returns the status and body.
func rawJSONRequest(t *testing.T, addr, path string, body []byte) (int, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, addr, len(body))
	conn.Write(body)
	return readResponse(t, conn)
}

// browserRequest sends what a browser would: method, path, body, and the
// headers given as "Name: value" pairs.
func browserRequest(t *testing.T, url, method, body string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, errorCode(b)
}

// A browser cannot be turned against the cluster (issue 21.5): basic auth
// (which a browser resends by itself) opens the status page and nothing
// else; a state-changing request marked cross-site by Origin or
// Sec-Fetch-Site is refused 403 whatever its credentials; JSON routes
// refuse form and text content types with 415. Programs, which send
// neither header and a bearer token, are served as before.
func TestNoCrossSiteWrites(t *testing.T) {
	c := mustStartClusterWith(t, 1, func(cfg *datanode.Config) { cfg.Auth = true }, func(c *Cluster) {
		_, c.Token = mustToken(t, c, "harness", api.ScopeRead, api.ScopeWrite, api.ScopeAdmin)
	})
	base, tok := c.URL(0), c.Token
	basic := func() string {
		req, _ := http.NewRequest("GET", base, nil)
		req.SetBasicAuth("", tok)
		return "Authorization: " + req.Header.Get("Authorization")
	}()
	bearer := "Authorization: Bearer " + tok
	form := "Content-Type: application/x-www-form-urlencoded"
	pause := base + api.PathAdminRebalance + "/pause"
	paused := func() bool {
		p, err := c.Client(0).RepairProgress(ctxT(t))
		if err != nil {
			t.Fatalf("repair progress: %v", err)
		}
		return p.Paused
	}
	has := `{"oids":["` + strings.Repeat("a", 64) + `"]}`
	f := func(what, method, url, body string, wantStatus int, wantCode string, headers ...string) {
		t.Helper()
		if status, code := browserRequest(t, url, method, body, headers...); status != wantStatus || code != wantCode {
			t.Errorf("%s: got %d %q; want %d %q", what, status, code, wantStatus, wantCode)
		}
	}
	// The attack as reported: a hostile page's form, with the basic
	// credentials the browser cached for /ui/.
	f("form POST with basic auth from another origin", "POST", pause, "x=1", 403, "forbidden", basic, form, "Origin: http://evil.example")
	f("form POST with basic auth, no Origin", "POST", pause, "x=1", 401, "unauthenticated", basic, form)
	f("basic auth on a read route other than /ui/", "GET", base+api.PathStatus, "", 401, "unauthenticated", basic)
	f("basic auth on /ui/", "GET", base+"/ui/", "", 200, "", basic)
	// Cross-site marks refuse even a bearer token.
	f("bearer POST from another origin", "POST", pause, "", 403, "forbidden", bearer, "Origin: http://evil.example")
	f("bearer POST from origin null", "POST", pause, "", 403, "forbidden", bearer, "Origin: null")
	f("bearer POST marked Sec-Fetch-Site: cross-site", "POST", pause, "", 403, "forbidden", bearer, "Sec-Fetch-Site: cross-site")
	f("bearer POST marked Sec-Fetch-Site: same-site", "POST", pause, "", 403, "forbidden", bearer, "Sec-Fetch-Site: same-site")
	f("bearer DELETE from another origin", "DELETE", base+api.PathObjects+strings.Repeat("b", 64), "", 403, "forbidden", bearer, "Origin: https://evil.example")
	if paused() {
		t.Fatal("repair is paused after refused cross-site requests; want it running")
	}
	// JSON routes take JSON only.
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", ""} {
		f("objects:has with Content-Type "+ct, "POST", base+api.PathBatchHas, has, 415, "unsupported_media_type", bearer, "Content-Type: "+ct)
		f("a ref transaction with Content-Type "+ct, "POST", base+api.PathRepos+"x/refs", `{"updates":[]}`, 415, "unsupported_media_type", bearer, "Content-Type: "+ct)
	}
	// What programs and the page's own origin send is served.
	f("objects:has with JSON and a charset", "POST", base+api.PathBatchHas, has, 200, "", bearer, "Content-Type: application/json; charset=utf-8")
	f("GET from another origin (reads are not refused)", "GET", base+api.PathStatus, "", 200, "", bearer, "Origin: http://evil.example", "Sec-Fetch-Site: cross-site")
	f("bearer POST from this node's own origin", "POST", pause, "", 200, "", bearer, "Origin: "+base, "Sec-Fetch-Site: same-origin")
	Eventually(t, 10*time.Second, "repair paused after a same-origin pause", paused)
	if err := c.Client(0).SetRepairPaused(ctxT(t), false); err != nil {
		t.Fatalf("api/client resume: %v", err)
	}
	if _, err := c.Client(0).HasMany(ctxT(t), []api.OID{api.MustParseOID(strings.Repeat("a", 64))}, api.Quorum); err != nil {
		t.Fatalf("api/client HasMany (a JSON route): %v", err)
	}
}
