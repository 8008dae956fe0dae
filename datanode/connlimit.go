package datanode

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// connLimit is a listener that keeps at most cap(slots) connections open.
// A connection beyond that is answered at once, in the accept loop, with
// 429 busy and the JSON error, and closed: each open connection holds a
// goroutine and read and write buffers, so the count bounds that memory
// (docs/performance.md, Memory). Node-to-node connections count too; keep
// the cap well above the peers' keep-alive pools.
type connLimit struct {
	net.Listener
	slots  chan struct{}
	reject []byte
}

func newConnLimit(ln net.Listener, max int) *connLimit {
	body := fmt.Sprintf(`{"error":{"code":"busy","message":"this node holds its maximum of %d open connections; retry later"}}`, max)
	reject := fmt.Sprintf("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
		len(body), body)
	return &connLimit{Listener: ln, slots: make(chan struct{}, max), reject: []byte(reject)}
}

// Accept returns the next connection that fits under the cap.
func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			release := sync.OnceFunc(func() { <-l.slots })
			if tc, ok := c.(*tls.Conn); ok {
				return &limitedTLSConn{Conn: tc, release: release}, nil
			}
			return &limitedConn{Conn: c, release: release}, nil
		default:
			// Over the cap: answer and close within a second (a TLS
			// handshake included), so a flood cannot hold the loop.
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write(l.reject)
			c.Close()
		}
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// limitedTLSConn is limitedConn for TLS: fasthttp finds the peer's
// certificate through Handshake and ConnectionState, which the embedded
// *tls.Conn keeps visible.
type limitedTLSConn struct {
	*tls.Conn
	release func()
}

func (c *limitedTLSConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
