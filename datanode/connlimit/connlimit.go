// Package connlimit caps the connections a server keeps open.
//
// Each open connection holds a goroutine and read and write buffers, so
// their count bounds that memory (docs/performance.md, Memory). A Listener
// answers a connection beyond the cap at once, in the accept loop, with
// 429 busy and the JSON error body the API uses, and closes it: the client
// learns to back off instead of hanging in the kernel's backlog.
//
//	ln = connlimit.New(ln, 10_000)
//	server.Serve(ln)
//
// # Caveats
//
// Node-to-node connections count too: keep the cap well above the peers'
// keep-alive pools, or nodes refuse each other under load. A connection
// gives its slot back only when closed, so a handler that leaks
// connections shrinks the cap.
package connlimit

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// Listener is a listener that keeps at most cap(slots) connections open.
type Listener struct {
	net.Listener
	slots  chan struct{}
	reject []byte
}

// New wraps ln so that at most max of its connections are open at once.
func New(ln net.Listener, max int) *Listener {
	body := fmt.Sprintf(`{"error":{"code":"busy","message":"this node holds its maximum of %d open connections; retry later"}}`, max)
	reject := fmt.Sprintf("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
		len(body), body)
	return &Listener{Listener: ln, slots: make(chan struct{}, max), reject: []byte(reject)}
}

// Accept returns the next connection that fits under the cap.
func (l *Listener) Accept() (net.Conn, error) {
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
