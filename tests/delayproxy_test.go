package tests

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A user-space TCP proxy that delays every byte by a settable latency, the
// kernel here having no netem. It listens inside a node's network
// namespace (so the namespace's iptables rules still see each peer's own
// address) and forwards to the node from the root namespace. Latency is
// pipelined, as netem's is: a chunk read at t is written at t+delay, and
// later chunks do not wait for earlier ones' delays to add up.

type delayProxy struct {
	ns, addr string
	target   string
	ln       net.Listener // nil while down
	delay    atomic.Int64 // nanoseconds
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool
}

// startDelayProxy listens on addr inside namespace ns and forwards to
// target; it is closed at cleanup.
func startDelayProxy(t *testing.T, ns, addr, target string) *delayProxy {
	t.Helper()
	p := &delayProxy{ns: ns, addr: addr, target: target, conns: map[net.Conn]bool{}}
	if err := p.up(); err != nil {
		t.Fatalf("delay proxy in %s: %v", ns, err)
	}
	t.Cleanup(p.close)
	return p
}

// up listens again after down.
func (p *delayProxy) up() error {
	ln, err := listenInNetns(p.ns, p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go p.serve(ln)
	return nil
}

// down stops listening, so connections are refused as they are by a dead
// node; the nemesis calls it while the node behind is killed, so that a
// client is told "refused" rather than accepted and then cut off.
func (p *delayProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// setDelay sets the one-way latency added in each direction.
func (p *delayProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

// listenInNetns creates a listening socket inside namespace ns: a socket
// stays in the namespace it was created in. The switch happens on a
// locked thread of its own; if switching back fails the thread is thrown
// away with its goroutine rather than reused.
func listenInNetns(ns, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			done <- result{nil, err}
			return
		}
		ln, lerr := net.Listen("tcp", addr)
		if err := setns(orig); err != nil {
			done <- result{ln, lerr} // the thread stays locked and dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- result{ln, lerr}
	}()
	r := <-done
	return r.ln, r.err
}

func setns(f *os.File) error {
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	return nil
}

func (p *delayProxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil || !p.track(in, out) {
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// track registers a connection pair, unless the proxy is closing.
func (p *delayProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk delayed by the latency in force when
// it was read; it closes both ends when either fails.
func (p *delayProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	src.Close()
	dst.Close()
	for range q { // let the reader finish
	}
	p.mu.Lock()
	delete(p.conns, src)
	delete(p.conns, dst)
	p.mu.Unlock()
}

func (p *delayProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.down()
	p.wg.Wait()
}

// TestDelayProxy checks the slow-node nemesis itself: a round trip through
// the proxy takes at least twice the delay, and a proxy that is down
// refuses connections until it is up again.
func TestDelayProxy(t *testing.T) {
	lab := newNetLab(t)
	h := lab.host("proxy")
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	p := startDelayProxy(t, h.ns, h.ip+":9000", echo.Addr().String())
	roundTrip := func() (time.Duration, error) {
		c, err := net.DialTimeout("tcp", h.ip+":9000", 2*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		start := time.Now()
		buf := make([]byte, 4)
		if _, err := c.Write([]byte("ping")); err != nil {
			return 0, err
		}
		_, err = io.ReadFull(c, buf)
		return time.Since(start), err
	}
	if _, err := roundTrip(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.setDelay(150 * time.Millisecond)
	if rtt, err := roundTrip(); err != nil || rtt < 300*time.Millisecond {
		t.Fatalf("round trip with 150ms each way: %s, %v; want at least 300ms", rtt, err)
	}
	p.down()
	if _, err := roundTrip(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("through a proxy that is down: %v; want connection refused", err)
	}
	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(); err != nil {
		t.Fatalf("through the proxy up again: %v", err)
	}
}
