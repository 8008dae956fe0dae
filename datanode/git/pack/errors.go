package pack

import (
	"errors"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// Errors returned by the Reader, wrapped with the offset and details. Each
// maps to one `unpack <reason>` a server sends; test with errors.Is.
var (
	// ErrCorrupt is a pack that is not well formed: bad signature, version,
	// entry type, zlib stream, or inflated size.
	ErrCorrupt = errors.New("pack: corrupt")
	// ErrTruncated is a pack that ends before its trailer.
	ErrTruncated = errors.New("pack: truncated")
	// ErrBadChecksum is a trailer that is not the SHA-1 of the pack.
	ErrBadChecksum = errors.New("pack: bad checksum")
	// ErrBadDelta is a delta that does not apply to its base, has a cycle,
	// or a chain over Config.MaxChainDepth.
	ErrBadDelta = errors.New("pack: bad delta")
	// ErrMissingBase is a REF_DELTA base that is neither in the pack nor in
	// the BaseSource.
	ErrMissingBase = errors.New("pack: missing delta base")
	// ErrTooLarge is an object or delta over Config.MaxObjectSize.
	ErrTooLarge = errors.New("pack: object too large")
	// ErrCollision is an object, or the pack, carrying a SHA-1 collision
	// attack. It is object.ErrCollision.
	ErrCollision = object.ErrCollision
)
