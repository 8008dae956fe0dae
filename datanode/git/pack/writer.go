package pack

import (
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/zlib"
	"github.com/pjbgf/sha1cd"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Writer writes a version 2 pack to an io.Writer as a stream: the header
// first, then each object as it is added, then the trailer on Close.
type Writer struct {
	w     io.Writer
	h     hash.Hash
	zw    *zlib.Writer
	off   int64
	count uint32
	added uint32
	last  int64 // offset of the last entry
	err   error
}

// NewWriter writes the header of a pack of count objects to w.
func NewWriter(w io.Writer, count uint32) (*Writer, error) {
	zw, err := zlib.NewWriterLevel(io.Discard, zlib.DefaultCompression)
	if err != nil {
		return nil, err
	}
	pw := &Writer{w: w, h: sha1cd.New(), zw: zw, count: count}
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], count)
	pw.write(hdr[:])
	return pw, pw.err
}

// Write is for the zlib writer: bytes go to the pack and the checksum.
func (pw *Writer) Write(p []byte) (int, error) {
	pw.write(p)
	return len(p), pw.err
}

func (pw *Writer) write(p []byte) {
	if pw.err != nil {
		return
	}
	n, err := pw.w.Write(p)
	pw.h.Write(p[:n])
	pw.off += int64(n)
	pw.err = err
}

// Add writes a whole object and returns the offset of its entry (for
// AddOfsDelta).
func (pw *Writer) Add(t object.Type, body []byte) (int64, error) {
	if !t.Valid() {
		return 0, fmt.Errorf("pack: Add: %w: %d", object.ErrBadType, t)
	}
	return pw.entry(uint8(t), nil, body)
}

// AddOfsDelta writes target as an OFS_DELTA against base, an object
// written earlier at baseOffset (with Add). The delta is AppendDelta's:
// shared prefix and suffix copied, the middle inserted.
func (pw *Writer) AddOfsDelta(baseOffset int64, base, target []byte) (int64, error) {
	if baseOffset < 12 || baseOffset >= pw.off {
		return 0, fmt.Errorf("pack: AddOfsDelta: base offset %d is not an earlier entry", baseOffset)
	}
	return pw.entry(typeOfsDelta, appendOfs(nil, pw.off-baseOffset), AppendDelta(nil, base, target))
}

func (pw *Writer) entry(kind uint8, extra, data []byte) (int64, error) {
	if pw.added == pw.count {
		return 0, fmt.Errorf("pack: more than the %d objects declared", pw.count)
	}
	off := pw.off
	pw.last = off
	pw.write(append(appendEntryHeader(nil, kind, uint64(len(data))), extra...))
	pw.zw.Reset(pw)
	pw.zw.Write(data)
	if err := pw.zw.Close(); err != nil && pw.err == nil {
		pw.err = err
	}
	pw.added++
	return off, pw.err
}

// lastOff is the offset of the last entry written.
func (pw *Writer) lastOff() int64 { return pw.last }

// Close writes the trailing checksum. It fails if fewer objects were added
// than declared.
func (pw *Writer) Close() error {
	if pw.err != nil {
		return pw.err
	}
	if pw.added != pw.count {
		return fmt.Errorf("pack: %d objects added, %d declared", pw.added, pw.count)
	}
	sum := pw.h.Sum(nil)
	_, err := pw.w.Write(sum)
	return err
}

func appendEntryHeader(dst []byte, kind uint8, size uint64) []byte {
	c := kind<<4 | byte(size&15)
	size >>= 4
	for size > 0 {
		dst = append(dst, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(dst, c)
}

func appendOfs(dst []byte, rel int64) []byte {
	var buf [10]byte
	i := len(buf) - 1
	buf[i] = byte(rel & 0x7f)
	for rel >>= 7; rel > 0; rel >>= 7 {
		rel--
		i--
		buf[i] = byte(0x80 | rel&0x7f)
	}
	return append(dst, buf[i:]...)
}
