package tests

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stratum-store/stratum/datanode"
)

// The request ID a client sends travels to every replica the coordinator
// calls and shows in the logs of each node.
func TestRequestIDFollowsTheRequest(t *testing.T) {
	var logs syncBuffer
	c := MustStartCluster(t, 3, func(cfg *datanode.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", cfg.ID)
	})
	data := []byte("follow me")
	conn, err := net.Dial("tcp", c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/objects/%s?consistency=all HTTP/1.1\r\nHost: x\r\nX-Request-ID: trace-me-42\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", sha256Hex(string(data)), len(data), data)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp, _ := bufio.NewReader(conn).ReadString(0)
	if !strings.Contains(resp, "201 Created") || !strings.Contains(resp, "X-Request-Id: trace-me-42") {
		t.Fatalf("reply: %q; want 201 with the request ID echoed", resp)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		Eventually(t, 5*time.Second, id+" logs the request ID", func() bool {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "node="+id) && strings.Contains(line, "request_id=trace-me-42") {
					return true
				}
			}
			return false
		})
	}
}
