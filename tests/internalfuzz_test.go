package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode"
)

// FuzzNodeToNodeMessages sends arbitrary bodies to every node-to-node route
// of a live node, as a cluster member would (a member's node and
// generation headers, the current ring revision): the node answers each one
// with a success or a JSON error, never a 500 and never a crash, and a
// replica write it accepts holds bytes that hash to the OID. The seed
// corpus runs in make test; make fuzz runs it for FUZZTIME.
func FuzzNodeToNodeMessages(f *testing.F) {
	// Logs go nowhere: a fuzz target may not log through f, which the
	// cluster's loggers would.
	c := MustStartCluster(f, 3, func(cfg *datanode.Config) {
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.Store.Logger = cfg.Logger
	})
	target, caller := c.Nodes[0], c.Nodes[1].Node
	good := []byte("a replica's bytes")
	sum := sha256.Sum256(good)
	oid := hex.EncodeToString(sum[:])
	routes := []struct{ method, path string }{
		{"PUT", api.PathReplicas + oid},
		{"POST", api.PathReplicaBatch},
		{"POST", api.PathReplicaHas},
		{"POST", api.PathReplicaGet},
		{"POST", api.PathReplicaDelete},
		{"POST", api.PathAEDigest},
		{"POST", api.PathAEList},
		{"POST", api.PathRefBegin},
		{"POST", api.PathRefApply},
		{"POST", api.PathRefInstall},
		{"GET", api.PathRefSnapshot + "?partition=0&epoch=1"},
	}
	var frame bytes.Buffer
	api.WriteFrame(&frame, api.MustParseOID(oid), good)
	for i := range routes {
		for _, body := range [][]byte{nil, []byte("{}"), []byte("[]"), []byte("\x00\xff garbage"), good, frame.Bytes(),
			[]byte(`{"oids":["` + oid + `","../../etc/passwd"]}`),
			[]byte(`{"entries":[{"oid":"` + oid + `","stamp":"99999999999999-0"}]}`),
			[]byte(`{"peer":"n2","ring_revision":1,"buckets":[0,-1,99999999]}`),
			[]byte(`{"partition":-1,"epoch":9223372036854775807,"seq":1,"changes":[{"repo":"../x","name":"refs/heads/a","oid":"zz"}]}`),
			[]byte(`{"epoch":1,"snapshot":{"partition":100000,"refs":{"a/b":{"refs/../x":"1"}}}}`),
		} {
			f.Add(uint8(i), body)
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		req, _ := http.NewRequest(r.method, "http://"+target.Addr+r.path, bytes.NewReader(body))
		req.Header.Set(api.HeaderNode, caller.ID())
		req.Header.Set(api.HeaderGeneration, caller.Generation())
		req.Header.Set(api.HeaderRingRevision, strconv.FormatInt(target.Node.Ring().Revision(), 10))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		what := fmt.Sprintf("%s %s with %q", r.method, r.path, body)
		switch {
		case resp.StatusCode == http.StatusInternalServerError:
			t.Fatalf("%s: 500 %s", what, got)
		case resp.StatusCode >= 300:
			var eb api.ErrorBody
			if json.Unmarshal(got, &eb) != nil || eb.Error.Code == "" {
				t.Fatalf("%s: %d with a body that is not the JSON error: %q", what, resp.StatusCode, got)
			}
		case strings.HasPrefix(r.path, api.PathReplicas):
			if s := sha256.Sum256(body); hex.EncodeToString(s[:]) != oid {
				t.Fatalf("%s: %d; a replica write of bytes that do not hash to the OID was accepted", what, resp.StatusCode)
			}
		}
		if h, err := hc.Get("http://" + target.Addr + "/healthz"); err != nil || h.StatusCode != 200 {
			t.Fatalf("after %s the node is not healthy: %v", what, err)
		} else {
			h.Body.Close()
		}
	})
}
