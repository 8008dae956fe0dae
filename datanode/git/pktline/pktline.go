package pktline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Sizes of pkt-lines (gitprotocol-common.txt).
const (
	// LargePacketMax is the largest pkt-line, its 4-byte header included.
	LargePacketMax = 65520
	// MaxPayload is the largest payload of one data packet.
	MaxPayload = LargePacketMax - 4
)

// Kind says what a packet is.
type Kind uint8

// The packet kinds.
const (
	Data        Kind = iota // a data packet: payload follows
	Flush                   // 0000
	Delim                   // 0001
	ResponseEnd             // 0002
)

func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Flush:
		return "flush"
	case Delim:
		return "delim"
	case ResponseEnd:
		return "response-end"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reader reads pkt-lines from an underlying stream.
type Reader struct {
	r   io.Reader
	hdr [4]byte
	buf [MaxPayload]byte
}

// NewReader returns a Reader on r. It reads exactly the bytes of each packet,
// never ahead, so r can be handed on after a flush packet.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Read reads one packet. For Data, payload is the packet's payload, valid
// until the next call. Read does not interpret ERR packets; see ReadPacket.
// At a clean end of stream (before any byte of a packet) it returns io.EOF.
func (r *Reader) Read() (Kind, []byte, error) {
	n, err := io.ReadFull(r.r, r.hdr[:])
	if err == io.EOF {
		return 0, nil, io.EOF
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%w: header: got %d of 4 bytes", ErrTruncated, n)
	}
	size, err := ParseLength(r.hdr[:])
	if err != nil {
		return 0, nil, err
	}
	switch size {
	case 0:
		return Flush, nil, nil
	case 1:
		return Delim, nil, nil
	case 2:
		return ResponseEnd, nil, nil
	}
	p := r.buf[:size-4]
	if n, err := io.ReadFull(r.r, p); err != nil {
		return 0, nil, fmt.Errorf("%w: payload: got %d of %d bytes", ErrTruncated, n, len(p))
	}
	return Data, p, nil
}

// ReadPacket is Read that turns an "ERR " data packet into an *ErrPacket.
func (r *Reader) ReadPacket() (Kind, []byte, error) {
	k, p, err := r.Read()
	if err == nil && k == Data && bytes.HasPrefix(p, []byte("ERR ")) {
		msg := bytes.TrimSuffix(p[4:], []byte("\n"))
		return k, nil, &ErrPacket{Message: string(msg)}
	}
	return k, p, err
}

// ParseLength decodes a 4-byte length header. It returns 0, 1 or 2 for the
// control packets and the total packet length (4..LargePacketMax) for data.
func ParseLength(h []byte) (int, error) {
	if len(h) != 4 {
		return 0, fmt.Errorf("%w: header of %d bytes, want 4", ErrMalformed, len(h))
	}
	n := 0
	for _, c := range h {
		d, ok := hexDigit(c)
		if !ok {
			return 0, fmt.Errorf("%w: length %q is not hex", ErrMalformed, h)
		}
		n = n<<4 | d
	}
	if n == 3 {
		return 0, fmt.Errorf("%w: length 0003 is shorter than its header", ErrMalformed)
	}
	if n > LargePacketMax {
		return 0, fmt.Errorf("%w: length %d over the maximum %d", ErrMalformed, n, LargePacketMax)
	}
	return n, nil
}

func hexDigit(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// Writer writes pkt-lines.
type Writer struct {
	w io.Writer
}

// NewWriter returns a Writer on w. Each packet is written with one Write call.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

const hexdigits = "0123456789abcdef"

// AppendData appends p as one data packet to dst.
func AppendData(dst, p []byte) ([]byte, error) {
	if len(p) > MaxPayload {
		return dst, fmt.Errorf("%w: %d bytes, max %d", ErrTooLong, len(p), MaxPayload)
	}
	n := len(p) + 4
	dst = append(dst, hexdigits[n>>12&15], hexdigits[n>>8&15], hexdigits[n>>4&15], hexdigits[n&15])
	return append(dst, p...), nil
}

// WriteData writes p as one data packet.
func (w *Writer) WriteData(p []byte) error {
	b, err := AppendData(make([]byte, 0, len(p)+4), p)
	if err != nil {
		return err
	}
	_, err = w.w.Write(b)
	return err
}

// WriteString writes s as one data packet.
func (w *Writer) WriteString(s string) error { return w.WriteData([]byte(s)) }

// Writef writes a formatted data packet.
func (w *Writer) Writef(format string, a ...any) error {
	return w.WriteData(fmt.Appendf(nil, format, a...))
}

// WriteError writes "ERR <msg>\n".
func (w *Writer) WriteError(msg string) error { return w.WriteString("ERR " + msg + "\n") }

// Flush writes a flush packet (0000).
func (w *Writer) Flush() error { return w.control("0000") }

// Delim writes a delim packet (0001).
func (w *Writer) Delim() error { return w.control("0001") }

// ResponseEnd writes a response-end packet (0002).
func (w *Writer) ResponseEnd() error { return w.control("0002") }

func (w *Writer) control(s string) error {
	_, err := io.WriteString(w.w, s)
	return err
}

// errIsEOF reports whether err is a clean end of stream.
func errIsEOF(err error) bool { return errors.Is(err, io.EOF) }
