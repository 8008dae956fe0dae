package pack

import (
	"bufio"
	"errors"
	"hash"
	"io"
)

// scanner reads the pack stream byte-exactly: every byte consumed is
// hashed (for the trailer) and copied to the spool file (for re-reading
// delta bases), and none is read past what the parser asked for. It is an
// io.ByteReader so that zlib does not read ahead.
type scanner struct {
	br      *bufio.Reader
	h       hash.Hash
	spool   *bufio.Writer
	off     int64  // bytes consumed
	pending []byte // consumed, not yet hashed and spooled
	eof     bool   // the source ended
	hashing bool   // false while reading the trailer
}

func newScanner(r io.Reader, h hash.Hash, spool io.Writer) *scanner {
	return &scanner{br: bufio.NewReaderSize(r, 64<<10), h: h, spool: bufio.NewWriterSize(spool, 64<<10), hashing: true, pending: make([]byte, 0, 32<<10)}
}

func (s *scanner) ReadByte() (byte, error) {
	c, err := s.br.ReadByte()
	if err != nil {
		return 0, s.srcErr(err)
	}
	s.off++
	s.pending = append(s.pending, c)
	if len(s.pending) == cap(s.pending) {
		s.flushPending()
	}
	return c, nil
}

func (s *scanner) Read(p []byte) (int, error) {
	n, err := s.br.Read(p)
	s.off += int64(n)
	if n > 0 {
		s.consume(p[:n])
	}
	if err != nil {
		return n, s.srcErr(err)
	}
	return n, nil
}

func (s *scanner) consume(p []byte) {
	if len(s.pending)+len(p) > cap(s.pending) {
		s.flushPending()
		s.write(p)
		return
	}
	s.pending = append(s.pending, p...)
}

func (s *scanner) flushPending() {
	s.write(s.pending)
	s.pending = s.pending[:0]
}

func (s *scanner) write(p []byte) {
	if s.hashing {
		s.h.Write(p)
		s.spool.Write(p) // an error shows at Flush
	}
}

// readFull reads exactly len(p) bytes or returns ErrTruncated.
func (s *scanner) readFull(p []byte) error {
	_, err := io.ReadFull(s, p)
	if err != nil {
		return truncated(err)
	}
	return nil
}

func (s *scanner) srcErr(err error) error {
	if errors.Is(err, io.EOF) {
		s.eof = true
	}
	return err
}

// truncated turns an end of stream into ErrTruncated.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// sync hashes and spools what was consumed; then the spool can be read.
func (s *scanner) sync() error {
	s.flushPending()
	return s.spool.Flush()
}
