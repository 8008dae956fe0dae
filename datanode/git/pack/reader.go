package pack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/klauspost/compress/zlib"
	"github.com/pjbgf/sha1cd"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Entry type numbers of the pack format beyond the four object types.
const (
	typeOfsDelta = 6
	typeRefDelta = 7
)

// Object is one object of a pack, handed to Read's callback.
type Object struct {
	ID     object.ID
	Type   object.Type
	Body   []byte // valid only during the callback
	Offset int64  // of its entry in the pack
	Depth  int    // delta chain length; 0 for a whole object
}

// Result sums up a pack that Read accepted.
type Result struct {
	Objects       int      // entries in the pack
	Deltas        int      // of which deltas
	RefDeltas     int      // of which REF_DELTA (the others are OFS_DELTA)
	ExternalBases int      // thin-pack bases taken from Config.Base
	Checksum      [20]byte // the trailer
}

// entry is what the reader keeps per pack entry.
type entry struct {
	off, dataOff int64
	size         int64
	kind         uint8 // 1-4, 6 or 7
	otype        object.Type
	resolved     bool
	depth        int32
	base         int // index of the base: >= 0 in the pack, < 0 external (-1-k)
	refBase      object.ID
	id           object.ID
}

type reader struct {
	ctx     context.Context
	cfg     Config
	fn      func(Object) error
	s       *scanner
	spool   *os.File
	entries []entry
	byID    map[object.ID]int
	ofsWait map[int][]int
	refWait map[object.ID][]int
	ext     []object.Type // external bases: type by index; IDs in extID
	extID   []object.ID
	cache   *lru
	zr      io.ReadCloser
	sbuf    *bufio.Reader
	res     Result
}

// Read parses a pack from r, resolves its deltas and calls fn for every
// object with its ID, in an order where whole objects come first. It
// returns the first error: a pack error (see errors.go), an error from
// Config.Base, or fn's error. Objects handed to fn are not to be trusted
// until Read returns nil: a pack with a bad checksum or a bad delta late in
// the stream is refused as a whole.
func Read(ctx context.Context, r io.Reader, cfg Config, fn func(Object) error) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	spool := cfg.Spool
	if spool == nil {
		var err error
		if spool, err = os.CreateTemp(cfg.TempDir, "stratum-pack-*"); err != nil {
			return Result{}, fmt.Errorf("pack: temporary file: %w", err)
		}
		defer os.Remove(spool.Name())
		defer spool.Close()
	}
	rd := &reader{
		ctx: ctx, cfg: cfg, fn: fn, spool: spool,
		s:       newScanner(r, sha1cd.New(), spool),
		byID:    make(map[object.ID]int),
		ofsWait: make(map[int][]int),
		refWait: make(map[object.ID][]int),
		cache:   newLRU(cfg.CacheBytes),
	}
	if err := rd.readEntries(); err != nil {
		return Result{}, err
	}
	if err := rd.readTrailer(); err != nil {
		return Result{}, err
	}
	if err := rd.resolveDeltas(); err != nil {
		return Result{}, err
	}
	return rd.res, nil
}

func (rd *reader) readEntries() error {
	var hdr [12]byte
	if err := rd.s.readFull(hdr[:]); err != nil {
		return fmt.Errorf("%w: header", err)
	}
	if !bytes.Equal(hdr[:4], []byte("PACK")) {
		return fmt.Errorf("%w: signature %q, want PACK", ErrCorrupt, hdr[:4])
	}
	if v := binary.BigEndian.Uint32(hdr[4:]); v != 2 {
		return fmt.Errorf("%w: version %d, want 2", ErrCorrupt, v)
	}
	n := binary.BigEndian.Uint32(hdr[8:])
	if n > rd.cfg.MaxObjects {
		return fmt.Errorf("%w: %d objects, max %d", ErrTooLarge, n, rd.cfg.MaxObjects)
	}
	rd.entries = make([]entry, 0, min(n, 1<<20))
	for i := uint32(0); i < n; i++ {
		if err := rd.ctx.Err(); err != nil {
			return err
		}
		if err := rd.readEntry(); err != nil {
			return err
		}
	}
	rd.res.Objects = int(n)
	return nil
}

func (rd *reader) readEntry() error {
	e := entry{off: rd.s.off}
	kind, size, err := readEntryHeader(rd.s)
	if err != nil {
		return fmt.Errorf("%w: entry at %d", err, e.off)
	}
	e.kind, e.size = kind, size
	if size > rd.cfg.MaxObjectSize {
		return fmt.Errorf("%w: entry at %d: %d bytes, max %d", ErrTooLarge, e.off, size, rd.cfg.MaxObjectSize)
	}
	switch kind {
	case typeOfsDelta:
		rel, err := readOfs(rd.s)
		if err != nil {
			return fmt.Errorf("%w: entry at %d: base offset", err, e.off)
		}
		if e.base, err = rd.entryAt(e.off - rel); err != nil {
			return fmt.Errorf("%w: entry at %d", err, e.off)
		}
	case typeRefDelta:
		if err := rd.s.readFull(e.refBase[:]); err != nil {
			return fmt.Errorf("%w: entry at %d: base id", err, e.off)
		}
	case 1, 2, 3, 4:
		e.otype = object.Type(kind)
	default:
		return fmt.Errorf("%w: entry at %d: type %d", ErrCorrupt, e.off, kind)
	}
	e.dataOff = rd.s.off
	idx := len(rd.entries)
	if e.otype == 0 {
		rd.res.Deltas++
		if kind == typeRefDelta {
			rd.res.RefDeltas++
		}
		if _, err := rd.inflate(rd.s, e.size, nil); err != nil {
			return fmt.Errorf("%w: entry at %d", err, e.off)
		}
		rd.entries = append(rd.entries, e)
		if kind == typeOfsDelta {
			rd.ofsWait[e.base] = append(rd.ofsWait[e.base], idx)
		} else {
			rd.refWait[e.refBase] = append(rd.refWait[e.refBase], idx)
		}
		return nil
	}
	body, err := rd.inflate(rd.s, e.size, []byte{})
	if err != nil {
		return fmt.Errorf("%w: entry at %d", err, e.off)
	}
	rd.entries = append(rd.entries, e)
	return rd.resolved(idx, body)
}

// entryAt finds the entry that starts at off.
func (rd *reader) entryAt(off int64) (int, error) {
	i := sort.Search(len(rd.entries), func(i int) bool { return rd.entries[i].off >= off })
	if i == len(rd.entries) || rd.entries[i].off != off {
		return 0, fmt.Errorf("%w: base offset %d is not an earlier entry", ErrBadDelta, off)
	}
	return i, nil
}

// resolved records that entry i has body: its ID, the callback.
func (rd *reader) resolved(i int, body []byte) error {
	e := &rd.entries[i]
	id, err := object.Hash(e.otype, body)
	if err != nil {
		return fmt.Errorf("%w: entry at %d", err, e.off)
	}
	e.id, e.resolved = id, true
	if _, dup := rd.byID[id]; !dup {
		rd.byID[id] = i
	}
	if len(rd.ofsWait[i]) > 0 || len(rd.refWait[id]) > 0 {
		rd.cache.add(i, body)
	}
	return rd.fn(Object{ID: id, Type: e.otype, Body: body, Offset: e.off, Depth: int(e.depth)})
}

func (rd *reader) readTrailer() error {
	if err := rd.s.sync(); err != nil {
		return fmt.Errorf("pack: temporary file: %w", err)
	}
	rd.s.hashing = false
	sum, collided := rd.s.h.(sha1cd.CollisionResistantHash).CollisionResistantSum(nil)
	var got [20]byte
	if err := rd.s.readFull(got[:]); err != nil {
		return fmt.Errorf("%w: trailer", err)
	}
	if collided {
		return fmt.Errorf("%w: pack checksum", ErrCollision)
	}
	if !bytes.Equal(sum, got[:]) {
		return fmt.Errorf("%w: trailer %x, pack hashes to %x", ErrBadChecksum, got, sum)
	}
	if _, err := rd.s.br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after the trailer", ErrCorrupt)
	}
	rd.res.Checksum = got
	return nil
}

// readEntryHeader reads the type and size varint of an entry.
func readEntryHeader(s io.ByteReader) (uint8, int64, error) {
	c, err := s.ReadByte()
	if err != nil {
		return 0, 0, truncated(err)
	}
	kind := c >> 4 & 7
	size := uint64(c & 15)
	for shift := uint(4); c&0x80 != 0; shift += 7 {
		if c, err = s.ReadByte(); err != nil {
			return 0, 0, truncated(err)
		}
		if shift > 56 {
			return 0, 0, fmt.Errorf("%w: size varint overflows", ErrCorrupt)
		}
		size |= uint64(c&0x7f) << shift
	}
	if size > 1<<62 {
		return 0, 0, fmt.Errorf("%w: size %d", ErrTooLarge, size)
	}
	return kind, int64(size), nil
}

// readOfs reads an OFS_DELTA's negative base offset.
func readOfs(s io.ByteReader) (int64, error) {
	c, err := s.ReadByte()
	if err != nil {
		return 0, truncated(err)
	}
	v := int64(c & 0x7f)
	for c&0x80 != 0 {
		if v > 1<<55 {
			return 0, fmt.Errorf("%w: base offset overflows", ErrBadDelta)
		}
		if c, err = s.ReadByte(); err != nil {
			return 0, truncated(err)
		}
		v = (v+1)<<7 | int64(c&0x7f)
	}
	return v, nil
}

// inflate reads one zlib stream from src that must inflate to exactly size
// bytes, appending them to dst, or discarding them if dst is nil.
func (rd *reader) inflate(src io.Reader, size int64, dst []byte) ([]byte, error) {
	var err error
	if rd.zr == nil {
		rd.zr, err = zlib.NewReader(src)
	} else {
		err = rd.zr.(zlib.Resetter).Reset(src, nil)
	}
	if err != nil {
		return nil, rd.zlibErr(err)
	}
	if dst == nil {
		n, err := io.Copy(io.Discard, io.LimitReader(rd.zr, size))
		if err != nil {
			return nil, rd.zlibErr(err)
		}
		if n != size {
			return nil, fmt.Errorf("%w: inflates to %d bytes, header says %d", ErrCorrupt, n, size)
		}
	} else {
		if dst, err = readGrowing(rd.zr, dst, size); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && !rd.s.eof {
				return nil, fmt.Errorf("%w: inflates to %d bytes, header says %d", ErrCorrupt, len(dst), size)
			}
			return nil, rd.zlibErr(err)
		}
	}
	// Read to the end of the stream: consumes and verifies the Adler-32.
	var one [1]byte
	if m, err := io.ReadFull(rd.zr, one[:]); err != io.EOF {
		if m > 0 {
			return nil, fmt.Errorf("%w: inflates to more than %d bytes", ErrCorrupt, size)
		}
		return nil, rd.zlibErr(err)
	}
	return dst, nil
}

func (rd *reader) zlibErr(err error) error {
	if rd.s.eof || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	return fmt.Errorf("%w: zlib: %v", ErrCorrupt, err)
}

// spoolReader reads the stored pack from off. It reuses one buffer: use
// it for one entry at a time.
func (rd *reader) spoolReader(off int64) *bufio.Reader {
	sr := io.NewSectionReader(rd.spool, off, 1<<62)
	if rd.sbuf == nil {
		rd.sbuf = bufio.NewReaderSize(sr, 16<<10)
	} else {
		rd.sbuf.Reset(sr)
	}
	return rd.sbuf
}

// readGrowing appends exactly size bytes from r to dst, growing dst as the
// bytes arrive rather than trusting size up front: a header that lies costs
// no more memory than the data that backs it.
func readGrowing(r io.Reader, dst []byte, size int64) ([]byte, error) {
	start := len(dst)
	for int64(len(dst)-start) < size {
		if len(dst) == cap(dst) {
			want := int64(len(dst)-start) * 2
			want = min(max(want, 64<<10), size) + int64(start)
			dst = append(dst[:cap(dst)], make([]byte, want-int64(cap(dst)))...)[:len(dst)]
		}
		limit := min(int64(cap(dst)), int64(start)+size)
		n, err := r.Read(dst[len(dst):limit])
		dst = dst[:len(dst)+n]
		if err == io.EOF && int64(len(dst)-start) < size {
			return dst, io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return dst, err
		}
	}
	return dst, nil
}
