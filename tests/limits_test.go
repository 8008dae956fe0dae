package tests

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// closedWithin reports whether the server closes conn within d: reads
// (and discards any answer, such as a 408) until EOF or a reset. A read
// that is still waiting after d means the connection was kept open.
func closedWithin(conn net.Conn, d time.Duration) (bool, string) {
	conn.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b)
}

// A client that sends its header slowly, and one that sends its body
// slowly, are cut off (HeaderTimeout, MinBodyRate), nothing of the slow
// body is stored, and a healthy client on the same node is served
// meanwhile. Without the limits both connections would stay open for
// RequestTimeout (5 minutes).
func TestSlowClientsAreCutOff(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.HeaderTimeout = time.Second
		cfg.MinBodyRate = 64 << 10 // a 64 KiB body gets 1s + 1s
	})
	addr := c.Nodes[0].Addr
	body := randomBytes(99, 64<<10)
	oid, _ := api.Digest(api.SHA256, body)

	slowHeader, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowHeader.Close()
	fmt.Fprintf(slowHeader, "GET %s%s HTTP/1.1\r\nHost: %s\r\n", api.PathObjects, oid, addr) // and never the blank line

	slowBody, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowBody.Close()
	fmt.Fprintf(slowBody, "PUT %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", api.PathObjects, oid, addr, len(body))
	stopTrickle := make(chan struct{})
	go func() { // 1 KiB/s: the body would take 64s
		for i := 0; i < len(body); i += 100 {
			select {
			case <-stopTrickle:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := slowBody.Write(body[i:min(i+100, len(body))]); err != nil {
				return
			}
		}
	}()
	defer close(stopTrickle)

	// A healthy client is served while both are connected.
	for i := range 20 {
		data := randomBytes(int64(1000+i), 4096)
		rec, err := c.Client(0).PutBytes(ctxT(t), data, api.SHA256, api.Quorum)
		if err != nil {
			t.Fatalf("healthy put %d next to slow clients: %v", i, err)
		}
		if got, err := c.Client(0).GetBytes(ctxT(t), api.MustParseOID(rec.OID), api.Quorum); err != nil || string(got) != string(data) {
			t.Fatalf("healthy get %d next to slow clients: %v", i, err)
		}
	}

	for _, s := range []struct {
		what string
		conn net.Conn
	}{{"slow-header", slowHeader}, {"slow-body", slowBody}} {
		closed, answer := closedWithin(s.conn, 30*time.Second)
		if !closed {
			t.Fatalf("the %s connection is still open 30s on; it must be cut off (limit about 2s)", s.what)
		}
		if answer != "" && (!strings.HasPrefix(answer, "HTTP/1.1 408") || !strings.Contains(answer, `"request_timeout"`)) {
			t.Errorf("%s client answered %q; want 408 with the JSON error request_timeout (or nothing)", s.what, answer)
		}
		t.Logf("%s client cut off; it was answered %q", s.what, firstLine(answer))
	}
	if _, err := c.Client(1).GetBytes(ctxT(t), oid, api.One); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("the slow body's object: %v; want not found (nothing of a cut-off upload is stored)", err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// Beyond MaxInflight client requests a node answers 429 busy with the JSON
// error at once, while /healthz and node-to-node calls still get through;
// when the requests in flight end, it serves again.
func TestInflightCapAnswers429(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		if cfg.ID == "n1" {
			cfg.MaxInflight = 2
		}
	})
	addr := c.Nodes[0].Addr
	oid, _ := api.Digest(api.SHA256, []byte("held"))
	// Two uploads of 1 MiB that stop after their first 32 KiB (past what
	// the server reads before it calls the handler): each holds a request
	// in flight until its body deadline (10s + 1 MiB at 256 KiB/s). An
	// upload answered early (the node briefly not ready, under load) no
	// longer holds anything: it is logged and sent again.
	hold := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PUT %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", api.PathObjects, oid, addr, 1<<20)
		conn.Write(make([]byte, 32<<10))
		return conn
	}
	held := []net.Conn{hold(), hold()}
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	url := c.URL(0) + api.PathObjects + oid.String()
	var body []byte
	Eventually(t, 20*time.Second, "a third request answered 429", func() bool {
		for i, conn := range held {
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			b := make([]byte, 512)
			if n, err := conn.Read(b); n > 0 || (err != nil && !errors.Is(err, os.ErrDeadlineExceeded)) {
				t.Logf("a held upload was answered early (%v): %q; holding another", err, firstLine(string(b[:n])))
				conn.Close()
				held[i] = hold()
			}
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusTooManyRequests
	})
	if code := errorCode(body); code != "busy" {
		t.Fatalf("429 body %q; want the JSON error with code busy", body)
	}
	resp, err := http.Get(c.URL(0) + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz under the cap: %v %v; want 200", resp, err)
	}
	resp.Body.Close()
	// Writes coordinated elsewhere still reach n1 as a replica.
	if _, err := c.Client(1).PutBytes(ctxT(t), []byte("through the cap"), api.SHA256, api.All); err != nil {
		t.Fatalf("a write at all while n1 is at its cap: %v", err)
	}
	for _, conn := range held {
		conn.Close()
	}
	Eventually(t, 10*time.Second, "n1 serves again", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	})
}

// A request whose line and header exceed MaxHeaderBytes, and an upload
// declaring more than the object size limit, get 413 with the JSON error
// too_large (not a bare 400) and nothing is stored, while a healthy client
// on the same node is served.
func TestOversizedRequestsGet413(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.MaxHeaderBytes = 8 << 10
		cfg.Store.MaxObjectSize = 1 << 20
	})
	addr := c.Nodes[0].Addr
	ask := func(what, request string) string {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, request)
		closed, answer := closedWithin(conn, 10*time.Second)
		if !strings.HasPrefix(answer, "HTTP/1.1 413") || !strings.Contains(answer, `"too_large"`) || !strings.Contains(answer, `"message"`) {
			t.Errorf("%s: answered %q; want 413 with the JSON error too_large", what, answer)
		}
		if !closed {
			t.Errorf("%s: connection still open after the 413", what)
		}
		return answer
	}
	data := randomBytes(7, 4096)
	oid, _ := api.Digest(api.SHA256, data)
	answer := ask("a 9 KiB header", fmt.Sprintf("PUT %s%s HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\nContent-Length: %d\r\n\r\n%s",
		api.PathObjects, oid, addr, strings.Repeat("p", 9<<10), len(data), data))
	t.Logf("oversized header: %q", firstLine(answer))
	big := randomBytes(8, 1<<20+1)
	bigOID, _ := api.Digest(api.SHA256, big)
	answer = ask("a body one byte over the object limit", fmt.Sprintf("PUT %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		api.PathObjects, bigOID, addr, len(big), big))
	t.Logf("oversized body: %q", firstLine(answer))
	for _, o := range []api.OID{oid, bigOID} {
		if _, err := c.Client(1).GetBytes(ctxT(t), o, api.One); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("object of a refused request: %v; want not found", err)
		}
	}
	// The same node serves a healthy client, with a header just under the limit.
	req, _ := http.NewRequest("PUT", c.URL(0)+api.PathObjects+oid.String(), strings.NewReader(string(data)))
	req.Header.Set("X-Pad", strings.Repeat("p", 6<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 && resp.StatusCode != 200 {
		t.Fatalf("healthy put with a 6 KiB header: %v %v", resp, err)
	}
	resp.Body.Close()
	if got, err := c.Client(0).GetBytes(ctxT(t), oid, api.Quorum); err != nil || string(got) != string(data) {
		t.Fatalf("healthy get: %v", err)
	}
}

// Beyond MaxConns open connections, a new one is answered 429 busy with
// the JSON error and closed, while the connections already open are
// served; when some close, new ones are accepted again. Node-to-node
// keep-alive connections count toward the cap, so the test opens idle
// connections until one is refused.
func TestConnectionCapAnswers429(t *testing.T) {
	const max = 12
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		if cfg.ID == "n1" {
			cfg.MaxConns = max
		}
	})
	addr := c.Nodes[0].Addr
	var open []net.Conn
	defer func() {
		for _, conn := range open {
			conn.Close()
		}
	}()
	var refused string
	for len(open) <= max && refused == "" {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// An accepted connection stays silent; a refused one is answered.
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, _ := io.ReadAll(conn)
		if len(b) > 0 {
			refused = string(b)
			conn.Close()
			break
		}
		conn.SetReadDeadline(time.Time{})
		open = append(open, conn)
	}
	if refused == "" {
		t.Fatalf("%d connections open on a node capped at %d, none refused", len(open), max)
	}
	if !strings.HasPrefix(refused, "HTTP/1.1 429") || !strings.Contains(refused, `"busy"`) || !strings.Contains(refused, `"message"`) {
		t.Fatalf("refused connection answered %q; want 429 with the JSON error busy", refused)
	}
	t.Logf("refused after %d idle connections of ours: %q", len(open), firstLine(refused))
	// A connection that was accepted is served.
	fmt.Fprintf(open[0], "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	open[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 12)
	if _, err := io.ReadFull(open[0], buf); err != nil || string(buf) != "HTTP/1.1 200" {
		t.Fatalf("request on an accepted connection: %q %v", buf, err)
	}
	for _, conn := range open {
		conn.Close()
	}
	open = nil
	Eventually(t, 10*time.Second, "n1 accepts connections again", func() bool {
		resp, err := http.Get(c.URL(0) + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
