package datanode

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/httpbody"
)

// payload is an object's verified bytes, held in memory when small or in an
// unlinked spool file when large. Many readers may read it at once (each gets
// its own SectionReader over ReadAt); release it once, after the last reader.
type payload struct {
	data  []byte
	file  *os.File
	size  int64
	stamp api.Stamp // the copy's stamp when read from a store
	refs  atomic.Int32
	free  func() // if set, runs after the last release (returns budgeted memory)
}

// reader returns a fresh reader over the whole payload.
func (p *payload) reader() io.Reader {
	if p.file != nil {
		return io.NewSectionReader(p.file, 0, p.size)
	}
	return bytes.NewReader(p.data)
}

// hold adds k users; each calls release once.
func (p *payload) hold(k int) { p.refs.Add(int32(k)) }

// release drops one user and closes the spool file after the last.
func (p *payload) release() {
	if p.refs.Add(-1) != 0 {
		return
	}
	if p.file != nil {
		p.file.Close()
	}
	if p.free != nil {
		p.free()
	}
}

// readPayload reads an object body of declared length size (-1 if unknown),
// at most max bytes, verifying it against oid while it is read. Bodies above
// threshold (or of unknown length) go to an unlinked file in spoolDir.
func readPayload(r io.Reader, oid api.OID, size, max, threshold int64, spoolDir string) (*payload, error) {
	if size > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", api.ErrTooLarge, size, max)
	}
	h := api.NewHasher(oid.Algorithm())
	var p *payload
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
		p.hold(1)
		p.release()
		return nil, err
	}
	return p, nil
}

func readSmall(r io.Reader, size int64) (*payload, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: body shorter than its Content-Length %d: %v", api.ErrBadRequest, size, err)
	}
	return &payload{data: buf, size: size}, nil
}

func spool(r io.Reader, size, max int64, dir string) (*payload, error) {
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
	return &payload{file: f, size: n}, nil
}
