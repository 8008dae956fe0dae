package tests

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestPutGetThroughEveryNode(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	ctx := ctxT(t)
	for i := range c.Nodes {
		data := randomBytes(int64(i), 4096)
		rec, err := c.Client(i).PutBytes(ctx, data, api.SHA256, api.Quorum)
		if err != nil {
			t.Fatalf("put via node %d: %v", i, err)
		}
		if !rec.Created || len(rec.Acked) < 2 || rec.Required != 2 || rec.Size != 4096 {
			t.Fatalf("receipt via node %d = %+v; want created, >=2 acked, required 2, size 4096", i, rec)
		}
		// The third copy may still be in flight; wait for it before checking
		// that a second put finds the object everywhere.
		Eventually(t, 10*time.Second, "third copy lands", func() bool { return totalObjects(c) == int64(3*(i+1)) })
		for j := range c.Nodes {
			got, err := c.Client(j).GetBytes(ctx, api.MustParseOID(rec.OID), api.Quorum)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get %s via node %d: err %v, equal %t", rec.OID, j, err, bytes.Equal(got, data))
			}
			size, err := c.Client(j).Head(ctx, api.MustParseOID(rec.OID), api.Quorum)
			if err != nil || size != 4096 {
				t.Fatalf("head via node %d: size %d err %v; want 4096", j, size, err)
			}
		}
		again, err := c.Client((i+1)%3).PutBytes(ctx, data, api.SHA256, api.All)
		if err != nil || again.Created {
			t.Fatalf("second put: created %t err %v; want already present", again.Created, err)
		}
	}
}

func TestNotFoundIsNotAnError(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	ctx := ctxT(t)
	missing, _ := api.Digest(api.SHA256, []byte("never stored"))
	for _, level := range []api.Consistency{api.One, api.Quorum, api.All} {
		if _, err := c.Client(0).GetBytes(ctx, missing, level); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("get missing at %s: err %v; want not_found", level, err)
		}
	}
	// With two of three replicas gone, a quorum read cannot know: 503, never 404.
	c.StopNode(1)
	c.StopNode(2)
	_, err := c.Client(0).GetBytes(ctx, missing, api.Quorum)
	if !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("get missing with 2 replicas down: err %v; want quorum_not_reached", err)
	}
	if _, err := c.Client(0).Head(ctx, missing, api.Quorum); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("head missing with 2 replicas down: err %v; want quorum_not_reached", err)
	}
}

func TestConsistencyLevelsWithOneNodeDown(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	ctx := ctxT(t)
	stored := randomBytes(99, 1000)
	rec, err := c.Client(0).PutBytes(ctx, stored, api.SHA256, api.All)
	if err != nil || len(rec.Acked) != 3 || rec.Degraded {
		t.Fatalf("put at all with every node up: %+v, %v", rec, err)
	}
	c.StopNode(2)
	for i, level := range []api.Consistency{api.One, api.Quorum} {
		data := randomBytes(int64(100+i), 1000)
		rec, err := c.Client(0).PutBytes(ctx, data, api.SHA256, level)
		if err != nil {
			t.Fatalf("put at %s with one node down: %v", level, err)
		}
		// the stopped node is skipped (DOWN) or fails, or is still being
		// tried when the reply leaves: degraded unless it is pending
		if len(rec.Acked) < level.Required(3) || rec.Degraded == slices.Contains(rec.Pending, c.Nodes[2].ID) {
			t.Fatalf("put at %s: receipt %+v; want >= %d acked, degraded unless %s is pending", level, rec, level.Required(3), c.Nodes[2].ID)
		}
		if _, err := c.Client(1).GetBytes(ctx, api.MustParseOID(rec.OID), level); err != nil {
			t.Fatalf("get at %s with one node down: %v", level, err)
		}
	}
	data := randomBytes(200, 1000)
	oid, _ := api.Digest(api.SHA256, data)
	status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", api.PathObjects+oid.String()+"?consistency=all", data)
	if status != 503 || errorCode(body) != "quorum_not_reached" {
		t.Fatalf("put at all with one node down: %d %s; want 503 quorum_not_reached", status, body)
	}
	if !strings.Contains(string(body), "[n3]") || !strings.Contains(string(body), "needs 3") {
		t.Fatalf("503 body %s; want it to name the failed replica and the 3 needed", body)
	}
	if _, err := c.Client(0).GetBytes(ctx, api.MustParseOID(rec.OID), api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("get at all with one node down: %v; want quorum_not_reached", err)
	}
	if _, err := c.Client(0).Head(ctx, api.MustParseOID(rec.OID), api.All); !errors.Is(err, api.ErrQuorumNotReached) {
		t.Fatalf("head at all with one node down: %v; want quorum_not_reached", err)
	}
}

// rawRequest sends one HTTP/1.1 request exactly as written, so paths reach
// the server unnormalised, and returns the status and body.
func rawRequest(t *testing.T, addr, method, path string, body []byte) (int, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", method, path, addr, len(body))
	conn.Write(body)
	return readResponse(t, conn)
}

func readResponse(t *testing.T, conn net.Conn) (int, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func errorCode(body []byte) string {
	var eb api.ErrorBody
	json.Unmarshal(body, &eb)
	return eb.Error.Code
}

func totalObjects(c *Cluster) int64 {
	var n int64
	for _, tn := range c.Nodes {
		if tn.Node != nil {
			n += tn.Node.Status().Objects
		}
	}
	return n
}

func TestBadInputIsRejectedAndNothingStored(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	data := []byte("hello\n")
	sum := sha256.Sum256(data)
	good := hex.EncodeToString(sum[:])
	f := func(path string, body []byte, wantStatus int, wantCode string) {
		t.Helper()
		status, got := rawRequest(t, c.Nodes[0].Addr, "PUT", path, body)
		if status != wantStatus || errorCode(got) != wantCode {
			t.Fatalf("PUT %s: got %d %s; want %d %s", path, status, got, wantStatus, wantCode)
		}
	}
	f("/v1/objects/"+good[:63], data, 400, "invalid_oid")
	f("/v1/objects/"+good+"0", data, 400, "invalid_oid")
	f("/v1/objects/"+strings.ToUpper(good), data, 400, "invalid_oid")
	f("/v1/objects/"+good[:62]+"zz", data, 400, "invalid_oid")
	f("/v1/objects/..%2f..%2f..%2fetc%2fpasswd", data, 400, "invalid_oid")
	f("/v1/objects/"+good[:60]+"%2f..", data, 400, "invalid_oid")
	f("/v1/objects/"+good[:63]+"%00", data, 400, "invalid_oid")
	f("/v1/objects/../objects/"+good, data, 400, "invalid_oid")
	f("/v1/objects/"+good+"?consistency=most", data, 400, "invalid_consistency")
	f("/v1/objects/"+good, []byte("hello\r"), 400, "digest_mismatch")
	big := randomBytes(7, 3<<20) // spooled path
	f("/v1/objects/"+good, big, 400, "digest_mismatch")
	f("/internal/v1/replica/"+good, data, 400, "bad_request") // no ring revision: refused
	if n := totalObjects(c); n != 0 {
		t.Fatalf("objects stored after bad requests: %d; want 0", n)
	}
	f("/v1/objects/"+good, data, 201, "")
	if n := totalObjects(c); n < 2 {
		t.Fatalf("objects stored after a good put: %d; want >= 2", n)
	}
}

func TestSHA1CollisionPairIsRefused(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	const shattered = "8ac60ba76f1999a1ab70223f225aefdc78d4ddc0"
	for _, name := range []string{"sha-mbles-1.bin", "sha-mbles-2.bin"} {
		data, err := os.ReadFile("../testdata/sha1-collision/" + name)
		if err != nil {
			t.Fatalf("collision pair: %v", err)
		}
		status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", "/v1/objects/"+shattered, data)
		if status != 400 || errorCode(body) != "sha1_collision" {
			t.Fatalf("PUT %s: %d %s; want 400 sha1_collision", name, status, body)
		}
	}
	if n := totalObjects(c); n != 0 {
		t.Fatalf("objects stored: %d; want 0", n)
	}
	// An ordinary SHA-1 object (a Git blob) is accepted under its Git OID.
	blob := []byte("blob 6\x00hello\n")
	status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", "/v1/objects/ce013625030ba8dba906f756967f9e9ca394464a", blob)
	if status != 201 {
		t.Fatalf("PUT git blob: %d %s; want 201", status, body)
	}
}

func TestTooLargeGets413(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) { cfg.Store.MaxObjectSize = 1 << 20 })
	data := randomBytes(1, 1<<20+1)
	oid, _ := api.Digest(api.SHA256, data)
	status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", api.PathObjects+oid.String(), data)
	if status != 413 || errorCode(body) != "too_large" {
		t.Fatalf("PUT 1 MiB + 1: %d %s; want 413 too_large", status, body)
	}
	if n := totalObjects(c); n != 0 {
		t.Fatalf("objects stored: %d; want 0", n)
	}
}

func TestObjectSizesRoundTrip(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	ctx := ctxT(t)
	for _, size := range []int{0, 1, 4 << 10, 1 << 20, 64 << 20} {
		data := randomBytes(int64(size), size)
		if size == 1<<20 {
			data = bytes.Repeat([]byte("compressible git object "), size/24+1)[:size]
		}
		rec, err := c.Client(size%3).PutBytes(ctx, data, api.SHA256, api.Quorum)
		if err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		oid := api.MustParseOID(rec.OID)
		for i := range c.Nodes {
			got, err := c.Client(i).GetBytes(ctx, oid, api.All)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get %d bytes via node %d: err %v, got %d bytes, equal %t", size, i, err, len(got), bytes.Equal(got, data))
			}
		}
	}
}
