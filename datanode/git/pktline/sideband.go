package pktline

import (
	"fmt"
	"io"
)

// The side-band channels.
const (
	BandData     = 1
	BandProgress = 2
	BandError    = 3
)

// MaxSidebandData is the most data one side-band-64k packet carries.
const MaxSidebandData = MaxPayload - 1

// SidebandWriter multiplexes data, progress and errors onto pkt-lines as
// side-band-64k does. It is an io.Writer of band-1 data.
type SidebandWriter struct {
	w   io.Writer
	buf []byte
}

// NewSidebandWriter returns a writer whose Write sends band-1 packets to w.
func NewSidebandWriter(w io.Writer) *SidebandWriter {
	return &SidebandWriter{w: w, buf: make([]byte, 0, LargePacketMax)}
}

// Write splits p into band-1 packets of at most MaxSidebandData bytes.
func (s *SidebandWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), MaxSidebandData)
		if err := s.band(BandData, p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// Progress sends msg on band 2, split into packets if long.
func (s *SidebandWriter) Progress(msg string) error { return s.text(BandProgress, msg) }

// Error sends msg on band 3. The stream should end after it.
func (s *SidebandWriter) Error(msg string) error { return s.text(BandError, msg) }

func (s *SidebandWriter) text(band byte, msg string) error {
	p := []byte(msg)
	for len(p) > 0 {
		c := min(len(p), MaxSidebandData)
		if err := s.band(band, p[:c]); err != nil {
			return err
		}
		p = p[c:]
	}
	return nil
}

func (s *SidebandWriter) band(band byte, p []byte) error {
	n := len(p) + 5
	s.buf = append(s.buf[:0], hexdigits[n>>12&15], hexdigits[n>>8&15], hexdigits[n>>4&15], hexdigits[n&15], band)
	s.buf = append(s.buf, p...)
	_, err := s.w.Write(s.buf)
	return err
}

// SidebandReader demultiplexes side-band packets: Read returns band-1 data,
// band-2 text goes to Progress (if not nil), band 3 ends the stream with a
// *RemoteError. A flush packet ends the stream with io.EOF.
type SidebandReader struct {
	r        *Reader
	Progress io.Writer
	pending  []byte
	err      error
}

// NewSidebandReader returns a SidebandReader on r.
func NewSidebandReader(r *Reader, progress io.Writer) *SidebandReader {
	return &SidebandReader{r: r, Progress: progress}
}

// Read returns band-1 data.
func (s *SidebandReader) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.next()
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *SidebandReader) next() error {
	k, p, err := s.r.ReadPacket()
	if errIsEOF(err) {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if k == Flush {
		return io.EOF
	}
	if k != Data || len(p) == 0 {
		return fmt.Errorf("%w: %s packet with no band", ErrBadBand, k)
	}
	switch p[0] {
	case BandData:
		s.pending = p[1:]
	case BandProgress:
		if s.Progress != nil {
			if _, err := s.Progress.Write(p[1:]); err != nil {
				return err
			}
		}
	case BandError:
		return &RemoteError{Message: string(p[1:])}
	default:
		return fmt.Errorf("%w: band %d", ErrBadBand, p[0])
	}
	return nil
}
