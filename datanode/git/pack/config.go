package pack

import (
	"fmt"
	"os"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Config bounds what a Reader accepts and the memory it uses.
type Config struct {
	// MaxObjectSize is the largest inflated object or delta, in bytes.
	// If zero, it defaults to 512 MiB.
	MaxObjectSize int64
	// MaxObjects is the largest object count a pack header may declare.
	// If zero, it defaults to 10 million.
	MaxObjects uint32
	// MaxChainDepth is the longest delta chain. If zero, it defaults to
	// 10000 (git's own limit for pack-objects --depth is 4095).
	MaxChainDepth int
	// CacheBytes bounds the cache of resolved delta bases. If zero, it
	// defaults to 64 MiB.
	CacheBytes int64
	// TempDir holds the temporary copy of the pack. If blank, os.TempDir().
	TempDir string
	// Spool, if set, is an empty file, open for reading and writing, that
	// takes the copy instead of a temporary file: every byte of the pack
	// but its 20-byte trailer (Result.Checksum), from offset 0. It is the
	// caller's to keep or remove; Read leaves it open.
	Spool *os.File
	// Base looks up thin-pack bases that are not in the pack. If nil, a thin
	// pack is refused with ErrMissingBase.
	Base BaseSource
}

// BaseSource returns the type and body of an object the receiver already
// has, or an error wrapping ErrMissingBase (any other error aborts the read).
type BaseSource func(id object.ID) (object.Type, []byte, error)

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{MaxObjectSize: 512 << 20, MaxObjects: 10_000_000, MaxChainDepth: 10000, CacheBytes: 64 << 20}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = d.MaxObjectSize
	}
	if c.MaxObjects == 0 {
		c.MaxObjects = d.MaxObjects
	}
	if c.MaxChainDepth == 0 {
		c.MaxChainDepth = d.MaxChainDepth
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = d.CacheBytes
	}
	return c
}

// Validate refuses negative limits.
func (c Config) Validate() error {
	switch {
	case c.MaxObjectSize < 0:
		return fmt.Errorf("pack: Config.MaxObjectSize %d: must be >= 0", c.MaxObjectSize)
	case c.MaxChainDepth < 0:
		return fmt.Errorf("pack: Config.MaxChainDepth %d: must be >= 0", c.MaxChainDepth)
	case c.CacheBytes < 0:
		return fmt.Errorf("pack: Config.CacheBytes %d: must be >= 0", c.CacheBytes)
	}
	return nil
}
