package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/syndtr/goleveldb/leveldb/storage"
)

// Defaults applied by Open to zero fields of Config.
const (
	DefaultLargeThreshold int64 = 1 << 20 // 1 MiB
	// DefaultCommitDelay is the value log's commit delay (Config.CommitDelay).
	DefaultCommitDelay         = 250 * time.Microsecond
	DefaultMaxObjectSize int64 = 256 << 20 // 256 MiB

	// MaxLargeThreshold bounds LargeThreshold: objects at or below the
	// threshold are held whole in memory and stored as one leveldb value,
	// and multi-megabyte values slow leveldb's compaction.
	MaxLargeThreshold int64 = 64 << 20
)

// Config configures a Store. Zero values of the numeric fields mean "use the
// default"; see DefaultConfig.
type Config struct {
	// Dir is the data directory, created if missing. Required.
	Dir string
	// LargeThreshold: objects larger than this many bytes are stored as
	// files under Dir/objects; the others are leveldb values. If 0 it
	// defaults to 1 MiB; at most 64 MiB.
	LargeThreshold int64
	// MaxObjectSize: puts of larger objects fail with ErrTooLarge. If 0 it
	// defaults to 256 MiB.
	MaxObjectSize int64
	// NoSync turns off every fsync. The default (false) makes each put
	// durable before it returns: a small object's value log record is
	// fsync'd (its index write is replayed from it after a crash: vlog.go,
	// "The log of record"), other leveldb writes use WriteOptions{Sync:
	// true}, object files are fsync'd, renamed into place and their
	// directory fsync'd. With NoSync a process crash loses nothing but a machine crash
	// or power loss may lose acknowledged puts. For tests and benchmarks.
	NoSync bool
	// NoValueLog keeps new small objects' bytes in leveldb itself, as
	// before the value log (vlog.go); objects written either way stay
	// readable either way. For comparisons.
	NoValueLog bool
	// ZstdValues compresses new small objects with zstd instead of S2:
	// about 13 % smaller for Git's objects, three times the CPU to
	// encode and twice to decode (codec.go). Values written either way
	// read either way. Every node of a cluster reads both from
	// 2026-12-07 on; an earlier node refuses a batch PUT's S2 values from
	// a coordinator (as it refuses encoded values at all: docs/
	// operations.md, upgrades).
	ZstdValues bool
	// SegmentSize is the size at which the value log starts a new segment
	// file. If 0 it defaults to DefaultSegmentSize (128 MiB).
	SegmentSize int64
	// CommitDelay is how long a value log fsync waits first, when other
	// appends are under way, for the puts arriving meanwhile to ride in
	// it (vlog.go, syncTo). If 0 it defaults to DefaultCommitDelay
	// (250 µs); a negative value turns the wait off. A lone writer never
	// waits.
	CommitDelay time.Duration
	// Logger receives corruption reports and recovery notes. If nil, logs
	// are discarded.
	Logger *slog.Logger
	// Storage, if set, is the goleveldb storage used for the index instead
	// of a file storage under Dir/db. Tests inject a power-loss simulator
	// here. The Store does not close it.
	Storage storage.Storage
	// EntryCache is how many OIDs' index entries (size and stamp, or
	// tombstone, and value log pointer) the store keeps in memory for Meta
	// and Get (entrycache.go): about 200 bytes each. If 0 it defaults to
	// DefaultEntryCache (131,072, about 25 MiB); a negative value turns
	// the cache off.
	EntryCache int

	// indexWriteBuffer, if not 0, replaces the index's 32 MiB memtable
	// size: tests lower it to make goleveldb rotate its journal soon.
	indexWriteBuffer int
}

// DefaultConfig returns a Config for dir with every default filled in.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, LargeThreshold: DefaultLargeThreshold, MaxObjectSize: DefaultMaxObjectSize}
}

// Validate checks c; the error names the field and the rule.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("store: Config.Dir must not be empty")
	case c.LargeThreshold < 0:
		return fmt.Errorf("store: Config.LargeThreshold must be >= 0 (0 means %d), got %d", DefaultLargeThreshold, c.LargeThreshold)
	case c.LargeThreshold > MaxLargeThreshold:
		return fmt.Errorf("store: Config.LargeThreshold must be <= %d, got %d", MaxLargeThreshold, c.LargeThreshold)
	case c.SegmentSize < 0:
		return fmt.Errorf("store: Config.SegmentSize must be >= 0 (0 means %d), got %d", DefaultSegmentSize, c.SegmentSize)
	case c.MaxObjectSize < 0:
		return fmt.Errorf("store: Config.MaxObjectSize must be >= 0 (0 means %d), got %d", DefaultMaxObjectSize, c.MaxObjectSize)
	}
	return nil
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.LargeThreshold == 0 {
		c.LargeThreshold = DefaultLargeThreshold
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.EntryCache == 0 {
		c.EntryCache = DefaultEntryCache
	}
	if c.CommitDelay == 0 {
		c.CommitDelay = DefaultCommitDelay
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
