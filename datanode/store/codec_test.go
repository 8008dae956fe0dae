package store

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"strings"
	"testing"
)

// Random bytes skip the trial compression and are stored raw; text,
// source code and repeated bytes are still compressed; short objects are
// always tried. Every value decodes to its bytes.
func TestEncodeInlineSkipsRandomBytes(t *testing.T) {
	for _, zstdValues := range []bool{false, true} {
		c, err := newCodecs(zstdValues)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		want := codecS2
		if zstdValues {
			want = codecZstd
		}
		checkEncodeInline(t, c, want)
	}
}

func checkEncodeInline(t *testing.T, c *codecs, compressed byte) {
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)
	source := []byte(strings.Repeat("func (s *Store) Put(ctx context.Context, oid OID, data []byte) error {\n\treturn nil\n}\n", 60))
	zeros := make([]byte, 4096)
	short := []byte(strings.Repeat("ab", 300)) // under two samples: tried, and it shrinks
	for _, tc := range []struct {
		name   string
		data   []byte
		random bool
		codec  byte
	}{
		{"random", random, true, codecRaw},
		{"source", source, false, compressed},
		{"zeros", zeros, false, compressed},
		{"short", short, false, compressed},
	} {
		if got := looksRandom(tc.data); got != tc.random {
			t.Errorf("%s: looksRandom = %v; want %v", tc.name, got, tc.random)
		}
		v := c.encodeInline(tc.data)
		if v[0] != tc.codec {
			t.Errorf("%s: codec %d; want %d", tc.name, v[0], tc.codec)
		}
		back, err := c.decodeInline(v)
		if err != nil || !bytes.Equal(back, tc.data) {
			t.Errorf("%s: decode: %v, equal %v", tc.name, err, bytes.Equal(back, tc.data))
		}
		size, err := inlineSize(v)
		if err != nil || size != int64(len(tc.data)) {
			t.Errorf("%s: inlineSize %d, %v; want %d", tc.name, size, err, len(tc.data))
		}
		if back, err := c.decodeValue(v, size); err != nil || !bytes.Equal(back, tc.data) {
			t.Errorf("%s: decodeValue: %v, equal %v", tc.name, err, bytes.Equal(back, tc.data))
		}
	}
}

func BenchmarkEncodeInlineRandom4K(b *testing.B) {
	c, _ := newCodecs(true)
	defer c.close()
	data := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(data)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		c.encodeInline(data)
	}
}

func BenchmarkLooksRandom(b *testing.B) {
	data := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(data)
	for i := 0; i < b.N; i++ {
		looksRandom(data)
	}
}

func BenchmarkZstdTrialRandom4K(b *testing.B) {
	c, _ := newCodecs(true)
	defer c.close()
	data := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(data)
	for i := 0; i < b.N; i++ {
		c.enc.EncodeAll(data, []byte{codecZstd})
	}
}

// BenchmarkEncodeSmallText compares, on 800-byte text objects (the size of
// a typical Git blob or tree), the inline encoder (literals left without
// Huffman coding) with the large objects' encoder (Huffman-coded
// literals); each reports its output size as a share of the input.
func BenchmarkEncodeSmallText(b *testing.B) {
	c, _ := newCodecs(true)
	defer c.close()
	objs := make([][]byte, 256)
	for i := range objs {
		objs[i] = textBytes(uint64(i), 800)
	}
	for _, e := range []struct {
		name string
		enc  func([]byte, []byte) []byte
	}{{"inline", c.enc.EncodeAll}, {"huffman", c.trial.EncodeAll}} {
		b.Run(e.name, func(b *testing.B) {
			in, out := 0, 0
			for i := 0; b.Loop(); i++ {
				o := objs[i%len(objs)]
				in, out = in+len(o), out+len(e.enc(o, nil))
			}
			b.ReportMetric(float64(out)/float64(in), "out/in")
		})
	}
}

// An S2 value that declares another size than the caller was told, or
// more than an inline object can be, or whose block is cut, is refused
// before or while decoding, never decoded past what it declares.
func TestS2ValuesAreBounded(t *testing.T) {
	c, _ := newCodecs(false)
	defer c.close()
	data := textBytes(4, 3000)
	v := c.encodeInline(data)
	if v[0] != codecS2 {
		t.Fatalf("codec %d; want S2", v[0])
	}
	if _, err := c.decodeValue(v, int64(len(data))-1); err == nil {
		t.Error("decodeValue took a block declaring one byte more than the caller's size")
	}
	if _, err := c.decodeInline(v[:len(v)-5]); err == nil {
		t.Error("decodeInline took a cut block")
	}
	huge := append([]byte{codecS2}, binary.AppendUvarint(nil, uint64(MaxLargeThreshold)+1)...)
	huge = append(huge, 0, 0, 0)
	if _, err := c.decodeInline(huge); err == nil {
		t.Error("decodeInline took a block declaring more than MaxLargeThreshold")
	}
}

func TestInlineValuesOfEitherEncoderDecode(t *testing.T) {
	c, _ := newCodecs(true)
	defer c.close()
	data := textBytes(3, 2000)
	for _, enc := range []func([]byte, []byte) []byte{c.enc.EncodeAll, c.trial.EncodeAll} {
		got, err := c.decodeInline(enc(data, []byte{codecZstd}))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("decodeInline: err=%v, equal=%t", err, bytes.Equal(got, data))
		}
	}
}
