// Package payload holds an object's verified bytes on their way through a
// data node: in memory when small, in an unlinked spool file when large,
// read by many replica calls at once and released after the last.
//
//	p, err := payload.Read(body, oid, size, max, threshold, spoolDir)
//	if err != nil { ... }            // too large, short, or not oid's bytes
//	p.Hold(3)                        // three replica calls will read it
//	go send(p.Reader()); ...; p.Release() // each call, when done
//
// # Caveats
//
// A Payload is verified against its OID while it is read, before anyone
// else sees it; a Payload built by hand (a store's copy) is only as good
// as the store's own check. Release it exactly once per Hold.
package payload

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
)

// Payload is an object's verified bytes, held in memory when small or in an
// unlinked spool file when large. Many readers may read it at once (each gets
// its own SectionReader over ReadAt); release it once, after the last reader.
type Payload struct {
	Data  []byte
	File  *os.File
	Size  int64
	Stamp api.Stamp // the copy's stamp when read from a store
	refs  atomic.Int32
	Free  func() // if set, runs after the last release (returns budgeted memory)
}

// Reader returns a fresh reader over the whole payload.
func (p *Payload) Reader() io.Reader {
	if p.File != nil {
		return io.NewSectionReader(p.File, 0, p.Size)
	}
	return bytes.NewReader(p.Data)
}

// Hold adds k users; each calls Release once.
func (p *Payload) Hold(k int) { p.refs.Add(int32(k)) }

// Holds is how many users have not released the payload yet.
func (p *Payload) Holds() int { return int(p.refs.Load()) }

// Release drops one user and closes the spool file after the last.
func (p *Payload) Release() {
	if p.refs.Add(-1) != 0 {
		return
	}
	if p.File != nil {
		p.File.Close()
	}
	if p.Free != nil {
		p.Free()
	}
}

// Read reads an object body of declared length size (-1 if unknown),
// at most max bytes, verifying it against oid while it is read. Bodies above
// threshold (or of unknown length) go to an unlinked file in spoolDir.
func Read(r io.Reader, oid api.OID, size, max, threshold int64, spoolDir string) (*Payload, error) {
	if size > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", api.ErrTooLarge, size, max)
	}
	h := api.NewHasher(oid.Algorithm())
	var p *Payload
	var err error
	if size >= 0 && size <= threshold {
		p, err = readSmall(io.TeeReader(r, h), size)
	} else {
		p, err = spool(io.TeeReader(r, h), size, max, spoolDir)
	}
	if err != nil {
		return nil, err
	}
	if err := api.Check(oid, h); err != nil {
		p.Hold(1)
		p.Release()
		return nil, err
	}
	return p, nil
}

func readSmall(r io.Reader, size int64) (*Payload, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: body shorter than its Content-Length %d: %v", api.ErrBadRequest, size, err)
	}
	return &Payload{Data: buf, Size: size}, nil
}

func spool(r io.Reader, size, max int64, dir string) (*Payload, error) {
	f, err := os.CreateTemp(dir, "body-*")
	if err != nil {
		return nil, fmt.Errorf("datanode: spool: %w", err)
	}
	os.Remove(f.Name()) // unlinked: nothing is left behind whatever happens
	n, err := io.Copy(f, io.LimitReader(r, max+1))
	switch {
	case err != nil:
		err = httpbody.ReadError(err)
	case n > max:
		err = fmt.Errorf("%w: more than %d bytes", api.ErrTooLarge, max)
	case size >= 0 && n != size:
		err = fmt.Errorf("%w: body has %d bytes, Content-Length said %d", api.ErrBadRequest, n, size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Payload{File: f, Size: n}, nil
}
