package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/stratum-store/stratum/api/objid"
)

// Index keys. Every stored object has exactly one:
//
//	o/<oid>  its entry: the body (a codec byte and its payload: see the
//	         codec constants), then the trailer, 16 bytes: the object's
//	         logical size and the stamp of its newest write, 8 bytes each,
//	         big-endian (entryValue, splitEntry)
//
// and a deleted object has one instead of it:
//
//	t/<oid>  its tombstone: uvarint stamp, uvarint caller time (tombstone.go)
//
// A store written before 2026-12-07 kept the size and stamp under a second
// key per object, s/<oid> (sizeValue); Open folds them into the o/ entries
// (migrate.go). One key per object halves the index writes of a put, which
// were a fifth of a Git push's CPU (docs/performance.md, "One index key per
// object").
const (
	objectPrefix = "o/"
	sizePrefix   = "s/" // the old format's second key: read only by migrate
	tombPrefix   = "t/"
)

func objectKey(oid objid.OID) []byte { return []byte(objectPrefix + oid.String()) }
func sizeKey(oid objid.OID) []byte   { return []byte(sizePrefix + oid.String()) }

// trailerLen is the length of the trailer every o/ value ends in.
const trailerLen = 16

// entryValue is the o/ value of an object whose body is body (a codec byte
// and its payload), size bytes long, written last with stamp.
func entryValue(body []byte, size int64, stamp objid.Stamp) []byte {
	v := make([]byte, len(body)+trailerLen)
	n := copy(v, body)
	binary.BigEndian.PutUint64(v[n:], uint64(size))
	binary.BigEndian.PutUint64(v[n+8:], uint64(stamp))
	return v
}

// splitEntry splits an o/ value into its body (whose capacity ends with
// it, so appending to it never writes over the trailer), the object's size
// and its stamp. An error means the value is damaged.
func splitEntry(v []byte) (body []byte, size int64, stamp objid.Stamp, err error) {
	n := len(v) - trailerLen
	if n < 1 {
		return nil, 0, 0, fmt.Errorf("index entry of %d bytes is too short", len(v))
	}
	sz := binary.BigEndian.Uint64(v[n:])
	if sz > 1<<62 {
		return nil, 0, 0, errors.New("index entry: malformed size")
	}
	return v[:n:n], int64(sz), objid.Stamp(binary.BigEndian.Uint64(v[n+8:])), nil
}

// Codec bytes: the first byte of every o/ value. They are part of the
// on-disk format: never renumber them.
const (
	codecRaw      byte = 0 // inline: the object's bytes follow
	codecZstd     byte = 1 // inline: one zstd frame, with its content size, follows
	codecFileRaw  byte = 2 // file: uvarint size follows; the file holds the bytes
	codecFileZstd byte = 3 // file: uvarint size follows; the file holds one zstd stream
	// 4 is codecLog (vlog.go)
	codecS2 byte = 5 // inline: one S2 block (its decoded length first, as a uvarint) follows
)

const (
	// sampleSize is how much of a large object is trial-compressed to
	// choose its codec.
	sampleSize = 64 << 10
	// streamWindow is the zstd window of large-object streams;
	// maxStreamWindow is the largest window a reader accepts, so a damaged
	// frame header cannot make Get allocate without bound.
	streamWindow    = 4 << 20
	maxStreamWindow = 16 << 20
)

// codecs holds the one zstd encoder and the one decoder shared by every
// inline value; EncodeAll and DecodeAll are safe for concurrent use.
//
// New inline values are S2 blocks (klauspost/compress/s2, Snappy's
// format extended) unless zstd is set (Config.ZstdValues). On the
// 100,045 objects of the Git benchmark repository S2 encodes about three
// times as fast as the zstd encoder below and decodes about twice as fast,
// for values 15 % larger (38.5 MB against 33.5 MB; blobs 64 % of their
// size against 49 %, trees 82 % against 79 %, commits 85 % against 92 %):
// a Git push spends 8 % less CPU (docs/performance.md, "One index key per
// object"). Values of either codec read the same way, whichever is set.
//
// The zstd encoder leaves literals without Huffman coding: on Git's small objects
// building the tables took 60 % of the encoding time, and without them a
// put encodes 2.5 times as fast and a get decodes 1.5 times as fast, for
// values about a fifth larger (docs/performance.md). The frames are
// ordinary zstd, so values written either way read the same. The
// decoder refuses output above MaxLargeThreshold, the largest an inline
// object can ever be, whatever LargeThreshold was when it was written.
//
// trial is the large objects' encoder, with Huffman coding as their
// streams have, used only to judge a sample (compressible).
//
// capped decodes the values a coordinator sends (decodeValue): it never
// writes past the capacity it is given, so a value cannot decode to more
// than it declares, whatever frames follow its first.
type codecs struct {
	zstd   bool // new inline values in zstd, not S2
	enc    *zstd.Encoder
	trial  *zstd.Encoder
	dec    *zstd.Decoder
	capped *zstd.Decoder
}

func newCodecs(zstdValues bool) (*codecs, error) {
	// Single segment: every frame then names its content size, even
	// below 256 bytes, so a replica can bound a value before decoding it
	// (inlineSize).
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithNoEntropyCompression(true), zstd.WithSingleSegment(true))
	if err != nil {
		return nil, fmt.Errorf("store: zstd encoder: %w", err)
	}
	trial, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return nil, fmt.Errorf("store: zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(MaxLargeThreshold)))
	if err != nil {
		return nil, fmt.Errorf("store: zstd decoder: %w", err)
	}
	capped, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(MaxLargeThreshold)), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("store: zstd decoder: %w", err)
	}
	return &codecs{zstd: zstdValues, enc: enc, trial: trial, dec: dec, capped: capped}, nil
}

func (c *codecs) close() {
	c.enc.Close()
	c.trial.Close()
	c.dec.Close()
	c.capped.Close()
}

// valueSlack is room past a value's declared size in decodeValue's
// buffer: the decoder's fast paths write up to 32 bytes ahead
// (compressedBlockOverAlloc in klauspost/compress/zstd); without the room
// a decode took 40 % longer. What decodes into it fails the size check.
const valueSlack = 64

// decodeValue returns the object bytes of an inline value that declares
// size bytes (inlineSize), decoding no more than that: a value whose
// frames or block decode to more, or to less, fails.
func (c *codecs) decodeValue(v []byte, size int64) ([]byte, error) {
	switch v[0] {
	case codecRaw:
		return v[1:], nil
	case codecS2:
		return decodeS2(v[1:], size)
	case codecZstd:
	default:
		return nil, fmt.Errorf("codec byte %#x is not an inline codec", v[0])
	}
	data, err := c.capped.DecodeAll(v[1:], make([]byte, 0, size+valueSlack))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("%d bytes decoded, %d declared", len(data), size)
	}
	return data, nil
}

// decodeS2 decodes an S2 block that must declare size bytes, at most
// MaxLargeThreshold, so a damaged or hostile length cannot make it
// allocate without bound.
func decodeS2(block []byte, size int64) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	switch {
	case err != nil:
		return nil, fmt.Errorf("s2: %w", err)
	case int64(n) != size:
		return nil, fmt.Errorf("s2 block of %d bytes, %d declared", n, size)
	case size > MaxLargeThreshold:
		return nil, fmt.Errorf("s2 block of %d bytes, above the inline limit", n)
	}
	data, err := s2.Decode(make([]byte, n), block)
	if err != nil {
		return nil, fmt.Errorf("s2: %w", err)
	}
	return data, nil
}

// encodeInline returns the o/ value of a small object: S2 (or zstd, with
// Config.ZstdValues) when that is smaller, raw otherwise. Bytes that look random (looksRandom) are
// stored raw without a trial: compressing them costs a put about 7 % of
// its CPU and never pays (docs/performance.md).
func (c *codecs) encodeInline(data []byte) []byte {
	try := len(data) > 0 && !looksRandom(data)
	if try && c.zstd {
		if v := c.enc.EncodeAll(data, []byte{codecZstd}); len(v) < 1+len(data) {
			return v
		}
	} else if try {
		buf := make([]byte, 1+s2.MaxEncodedLen(len(data)))
		buf[0] = codecS2
		if v := buf[:1+len(s2.Encode(buf[1:], data))]; len(v) < 1+len(data) {
			return v
		}
	}
	v := make([]byte, 1+len(data))
	v[0] = codecRaw
	copy(v[1:], data)
	return v
}

// decodeInline returns the object bytes of an inline o/ value. Errors mean
// the value is damaged.
func (c *codecs) decodeInline(v []byte) ([]byte, error) {
	switch v[0] {
	case codecRaw:
		return v[1:], nil
	case codecZstd:
		data, err := c.dec.DecodeAll(v[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return data, nil
	case codecS2:
		n, err := s2.DecodedLen(v[1:])
		if err != nil {
			return nil, fmt.Errorf("s2: %w", err)
		}
		return decodeS2(v[1:], int64(n))
	}
	return nil, fmt.Errorf("codec byte %#x is not an inline codec", v[0])
}

// inlineSize is the object size an inline value declares: the bytes after
// a raw codec byte, an S2 block's decoded length (its header), or a zstd
// frame's content size (which encodeInline always writes: single-segment
// frames), read from the frame header without decoding. A zstd frame
// without it is refused, and so is any other codec byte.
func inlineSize(v []byte) (int64, error) {
	if len(v) == 0 {
		return 0, errors.New("empty value")
	}
	switch v[0] {
	case codecRaw:
		return int64(len(v) - 1), nil
	case codecS2:
		n, err := s2.DecodedLen(v[1:])
		if err != nil {
			return 0, fmt.Errorf("s2 block header: %w", err)
		}
		return int64(n), nil
	case codecZstd:
		var h zstd.Header
		if err := h.Decode(v[1:]); err != nil {
			return 0, fmt.Errorf("zstd frame header: %w", err)
		}
		if !h.HasFCS || h.FrameContentSize > math.MaxInt64 {
			return 0, errors.New("zstd frame without its content size")
		}
		return int64(h.FrameContentSize), nil
	}
	return 0, fmt.Errorf("codec byte %#x is not an inline codec", v[0])
}

// entropySample is how many bytes looksRandom reads; randomBits is the
// order-0 entropy, in bits per byte, above which a sample counts as
// random. Uniform random bytes measure about 7.6 on 512 bytes (the
// estimate is low on short samples); English text and source code about
// 4.5 to 5.5; zstd output and JPEG above 7.5.
const (
	entropySample = 512
	randomBits    = 7.2
)

// looksRandom reports whether data is at least 2 samples long and its
// first entropySample bytes have an order-0 entropy above randomBits. It
// reads no more than the sample, so its cost does not grow with the
// object. It misses data whose redundancy is only in repeats (a random
// block written twice): such data is stored raw, which is correct, only
// larger.
func looksRandom(data []byte) bool {
	if len(data) < 2*entropySample {
		return false
	}
	var counts [256]uint16
	for _, b := range data[:entropySample] {
		counts[b]++
	}
	// H = log2(N) - sum(n log2 n) / N, with n log2 n from a table.
	var sum float64
	for _, n := range counts {
		sum += nLog2n[n]
	}
	return math.Log2(entropySample)-sum/entropySample > randomBits
}

// nLog2n[n] is n*log2(n), for the counts of one sample.
var nLog2n = func() (t [entropySample + 1]float64) {
	for n := 1; n <= entropySample; n++ {
		t[n] = float64(n) * math.Log2(float64(n))
	}
	return t
}()

// compressible reports whether a large object's sample shrinks below 75 %
// of its size. A stream is compressed on every replica's write and
// decompressed on every read, so a saving of less than a quarter is not
// worth it: a Git pack (zlib-compressed objects) has a sample that shrinks
// to about 82 % and a whole that shrinks to about 94 %, and compressing the
// kept pack of every push cost 4 % of the push's CPU for 6 % of its bytes
// (docs/performance.md, "Tree walks and raw kept packs"). Text, logs and most
// executables shrink to well under 75 %.
func (c *codecs) compressible(sample []byte) bool {
	out := c.trial.EncodeAll(sample, make([]byte, 0, len(sample)))
	return len(out)*4 < len(sample)*3
}

// newStreamEncoder compresses one large object into w. Close it to finish
// the stream.
func newStreamEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(streamWindow))
}

// newStreamDecoder decodes one large object from r without goroutines.
// Close it to release its buffers.
func newStreamDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxStreamWindow))
}

// fileEntry is the o/ value of a large object.
func fileEntry(codec byte, size int64) []byte {
	return binary.AppendUvarint([]byte{codec}, uint64(size))
}

// parseFileEntry decodes a file entry; errors mean the value is damaged.
func parseFileEntry(v []byte) (codec byte, size int64, err error) {
	size, err = parseSize(v[1:])
	return v[0], size, err
}

// sizeValue is an s/ value of the old format (migrate.go): the size, and
// the stamp unless it is 0 (the format written before stamps existed,
// which still reads as stamp 0). Only tests write it now.
func sizeValue(size int64, stamp objid.Stamp) []byte {
	v := binary.AppendUvarint(nil, uint64(size))
	if stamp != 0 {
		v = binary.AppendUvarint(v, uint64(stamp))
	}
	return v
}

// parseSizeEntry decodes an s/ value of the old format (migrate.go).
func parseSizeEntry(v []byte) (int64, objid.Stamp, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > 1<<62 {
		return 0, 0, errors.New("malformed size")
	}
	if k == len(v) {
		return int64(n), 0, nil
	}
	st, k2 := binary.Uvarint(v[k:])
	if k2 <= 0 || k+k2 != len(v) {
		return 0, 0, errors.New("malformed size entry stamp")
	}
	return int64(n), objid.Stamp(st), nil
}

// parseSize decodes a uvarint size that must fill v exactly.
func parseSize(v []byte) (int64, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || k != len(v) || n > 1<<62 {
		return 0, errors.New("malformed size")
	}
	return int64(n), nil
}
