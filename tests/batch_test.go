package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/datanode"
)

func batchObjects(t *testing.T, n int, prefix string) []client.Object {
	var out []client.Object
	for i := 0; i < n; i++ {
		data := bytes.Repeat([]byte(fmt.Sprintf("%s %d ", prefix, i)), 200)[:1024]
		oid, _ := api.Digest(api.SHA256, data)
		out = append(out, client.Object{OID: oid, Data: data})
	}
	return out
}

func TestBatchPutHasGet(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	cl := c.Client(0)
	objs := batchObjects(t, 500, "batch")
	bad := client.Object{OID: objs[0].OID, Data: []byte("wrong bytes")}
	reply, err := cl.PutBatch(ctxT(t), append(append([]client.Object{}, objs...), bad), api.Quorum)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Stored != 500 || reply.Failed != 1 || reply.Items[500].Error == nil || reply.Items[500].Error.Code != "digest_mismatch" {
		t.Fatalf("batch put: stored %d failed %d, last item %+v; want 500, 1, digest_mismatch", reply.Stored, reply.Failed, reply.Items[500])
	}
	for i, it := range reply.Items[:500] {
		if !it.Created || len(it.Acked) < 2 {
			t.Fatalf("item %d: %+v; want created with >= 2 acks", i, it)
		}
	}
	// An object of exactly the batch limit that does not compress travels
	// to the replicas as a value one byte longer, and is stored beside a
	// small one.
	edge := make([]byte, 1<<20) // the default LargeThreshold
	rand.NewChaCha8([32]byte{1}).Read(edge)
	edgeOID, _ := api.Digest(api.SHA256, edge)
	reply, err = cl.PutBatch(ctxT(t), []client.Object{{OID: edgeOID, Data: edge}, objs[0]}, api.All)
	if err != nil || reply.Stored != 2 {
		t.Fatalf("batch put of an object at the limit: %+v, %v; want both stored on every replica", reply, err)
	}
	// Every replica's own copy reads back (a read at `one` is answered from
	// the serving node's copy): the coordinator sent each replica the
	// object compressed once, as an encoded value, which each replica
	// decoded, verified and stored as it came.
	for k := range c.Nodes {
		for _, o := range objs[:50] {
			got, err := c.Client(k).GetBytes(ctxT(t), o.OID, api.One)
			if err != nil || !bytes.Equal(got, o.Data) {
				t.Fatalf("n%d's copy of a batch-put object: %v", k+1, err)
			}
		}
	}
	// Every object is there, at all, through another node, one by one too.
	for _, o := range objs[:20] {
		got, err := c.Client(2).GetBytes(ctxT(t), o.OID, api.All)
		if err != nil || !bytes.Equal(got, o.Data) {
			t.Fatalf("single get of a batch-put object: %v", err)
		}
	}
	var oids []api.OID
	for _, o := range objs {
		oids = append(oids, o.OID)
	}
	missing := batchObjects(t, 10, "never stored")
	for _, o := range missing {
		oids = append(oids, o.OID)
	}
	has, err := c.Client(1).HasMany(ctxT(t), oids, api.Quorum)
	if err != nil || len(has.Present) != 500 || len(has.Missing) != 10 || len(has.Unknown) != 0 {
		t.Fatalf("has: %d present, %d missing, %d unknown, %v; want 500, 10, 0", len(has.Present), len(has.Missing), len(has.Unknown), err)
	}
	i := 0
	err = c.Client(2).GetMany(ctxT(t), oids, api.Quorum, func(oid api.OID, data []byte, err error) {
		switch {
		case oid != oids[i]:
			t.Fatalf("frame %d is %s; want %s (request order)", i, oid, oids[i])
		case i < 500 && (err != nil || !bytes.Equal(data, objs[i].Data)):
			t.Fatalf("object %d: %v", i, err)
		case i >= 500 && !errors.Is(err, api.ErrNotFound):
			t.Fatalf("missing object %d: %v; want not_found", i, err)
		}
		i++
	})
	if err != nil || i != 510 {
		t.Fatalf("get many: %d frames, %v; want 510", i, err)
	}
}

func TestBatchPutWithOneNodeDown(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	c.StopNode(2)
	objs := batchObjects(t, 50, "degraded")
	reply, err := c.Client(0).PutBatch(ctxT(t), objs, api.Quorum)
	if err != nil || reply.Stored != 50 {
		t.Fatalf("quorum batch with one node down: %+v %v; want all 50 stored", reply.Stored, err)
	}
	reply, err = c.Client(0).PutBatch(ctxT(t), batchObjects(t, 50, "needs all"), api.All)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Stored != 0 || reply.Failed != 50 || reply.Items[0].Error.Code != "quorum_not_reached" {
		t.Fatalf("all-level batch with one node down: stored %d failed %d first %+v; want every item quorum_not_reached", reply.Stored, reply.Failed, reply.Items[0].Error)
	}
}

func TestBatchBadInput(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	f := func(path string, body string, want int, code string) {
		t.Helper()
		status, got := rawJSONRequest(t, c.Nodes[0].Addr, path, []byte(body))
		if status != want || errorCode(got) != code {
			t.Fatalf("POST %s %q: %d %s; want %d %s", path, body, status, got, want, code)
		}
	}
	f(api.PathBatchPut, "not a frame\n", 400, "invalid_oid")
	f(api.PathBatchPut, sha256Hex("x")+" 5\nab", 400, "bad_request")
	// an encoded store value (node to node) is refused from a client
	f(api.PathBatchPut, sha256Hex("x")+" 2 0 value\n\x00x", 400, "bad_request")
	f(api.PathBatchHas, `{"oids":["NOPE"]}`, 400, "invalid_oid")
	f(api.PathBatchHas, `[1,2`, 400, "bad_request")
	f(api.PathBatchGet+"?consistency=most", `{"oids":[]}`, 400, "invalid_consistency")
	if n := totalObjects(c); n != 0 {
		t.Fatalf("%d objects stored by bad batches", n)
	}
}

// A ring-aware client sends requests straight to replicas and picks up a
// new ring when a reply says there is one.
func TestRingAwareClientFollowsRingChanges(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	cl, err := client.New(client.Config{Endpoint: c.URL(0), RingAware: true})
	if err != nil {
		t.Fatal(err)
	}
	first := batchObjects(t, 20, "ring-aware")
	for _, o := range first {
		if _, err := cl.PutBytes(ctxT(t), o.Data, api.SHA256, api.Quorum); err != nil {
			t.Fatal(err)
		}
	}
	c.AddNode()
	c.WaitRingConverged()
	want := c.Nodes[0].Node.Ring().Revision()
	Eventually(t, 10*time.Second, "client learns the 4-node ring", func() bool {
		cl.GetBytes(ctxT(t), first[0].OID, api.Quorum) // any reply carries the node's ring revision
		return cl.RingRevision() == want
	})
	for _, o := range first {
		got, err := cl.GetBytes(ctxT(t), o.OID, api.Quorum)
		if err != nil || !bytes.Equal(got, o.Data) {
			t.Fatalf("ring-aware get after the ring change: %v", err)
		}
	}
	// With the node it would ask first gone, the client tries the next replica.
	c.StopNode(3)
	for _, o := range batchObjects(t, 20, "after stop") {
		if _, err := cl.PutBytes(ctxT(t), o.Data, api.SHA256, api.Quorum); err != nil {
			t.Fatalf("ring-aware put with one replica stopped: %v", err)
		}
	}
}

// Request bodies in memory are bounded: while a slow client holds the whole
// budget with a half-sent batch, other writes get 429 busy instead of more
// memory; once it goes away the budget is back.
func TestBodyMemoryIsBounded(t *testing.T) {
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) { cfg.MaxBodyMemory = api.MaxBatchBytes })
	conn, err := net.Dial("tcp", c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	// fasthttp reads the first 8 KiB of a body before it calls the handler.
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s 100000\n%s", api.PathBatchPut, api.MaxBatchBytes, sha256Hex("x"), bytes.Repeat([]byte("z"), 9000))
	Eventually(t, 10*time.Second, "the slow batch holds the budget", func() bool {
		return c.Nodes[0].Node.Status().BodyMemory == api.MaxBatchBytes
	})
	data := []byte("a small object")
	status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", "/v1/objects/"+sha256Hex(string(data)), data)
	if status != 429 || errorCode(body) != "busy" {
		t.Fatalf("PUT while the budget is held: %d %s; want 429 busy", status, body)
	}
	conn.Close()
	Eventually(t, 10*time.Second, "budget released", func() bool { return c.Nodes[0].Node.Status().BodyMemory == 0 })
	if status, body := rawRequest(t, c.Nodes[0].Addr, "PUT", "/v1/objects/"+sha256Hex(string(data)), data); status != 201 {
		t.Fatalf("PUT after the slow client left: %d %s; want 201", status, body)
	}
	Eventually(t, 10*time.Second, "every node's budget back to 0", func() bool {
		for _, tn := range c.Nodes {
			if tn.Node.Status().BodyMemory != 0 {
				return false
			}
		}
		return true
	})
}

// A replica batch carrying encoded values (what a coordinator sends its
// replicas) is judged per item over the wire: a value that does not
// decode is bad_request, one that decodes to other bytes than its OID is
// digest_mismatch, a good one is stored, and only it.
func TestReplicaBatchOfValuesOverTheWire(t *testing.T) {
	c := MustStartCluster(t, 3, nil)
	from, to := c.Nodes[0].Node, c.Nodes[1]
	good := bytes.Repeat([]byte("a value sent compressed once "), 40)
	goodOID, _ := api.Digest(api.SHA256, good)
	other, _ := api.Digest(api.SHA256, []byte("some other object"))
	garbage, _ := api.Digest(api.SHA256, []byte("garbage"))
	var body bytes.Buffer
	api.WriteValueFrame(&body, goodOID, append([]byte{0}, good...), 1) // codec byte 0: raw
	api.WriteValueFrame(&body, other, append([]byte{0}, good...), 1)   // decodes to good's bytes
	api.WriteValueFrame(&body, garbage, []byte{1, 0xff, 0xfe}, 1)      // codec 1 (zstd), not a frame
	conn, err := net.Dial("tcp", to.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\n%s: %d\r\n%s: %s\r\n%s: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		api.PathReplicaBatch, to.Addr, api.HeaderRingRevision, to.Node.Ring().Revision(), api.HeaderNode, from.ID(), api.HeaderGeneration, from.Generation(), body.Len())
	conn.Write(body.Bytes())
	status, reply := readResponse(t, conn)
	var res []api.ReplicaBatchResult
	if err := json.Unmarshal(reply, &res); status != 200 || err != nil || len(res) != 3 {
		t.Fatalf("replica batch: %d %s; want 200 and three results", status, reply)
	}
	if !res[0].Created || res[1].Code != "digest_mismatch" || res[2].Code != "bad_request" {
		t.Fatalf("results %+v; want created, digest_mismatch, bad_request", res)
	}
	if n := to.Node.Status().Objects; n != 1 {
		t.Fatalf("%s holds %d objects; want only the good one", to.ID, n)
	}
	if _, err := to.Node.LocalEntry(ctxT(t), other); err == nil {
		t.Fatalf("%s stored the value sent under another object's OID", to.ID)
	}
}
