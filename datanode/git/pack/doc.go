// Package pack reads and writes Git pack files (version 2), the format in
// which Git moves objects over the wire in fetch and push.
//
// # The format
//
// A pack is "PACK", a 4-byte version (2), a 4-byte object count, then that
// many entries, then the SHA-1 of everything before it. Each entry starts
// with a varint holding its type (3 bits) and its size (the inflated size of
// what follows), then a zlib stream. Types 1-4 are whole objects (commit,
// tree, blob, tag). Type 6 (OFS_DELTA) and 7 (REF_DELTA) are deltas: the
// zlib stream holds instructions that rebuild the object from a base object,
// named by a negative offset to an earlier entry of the same pack (OFS) or
// by its object ID (REF). A delta starts with the base's size and the
// result's size, then copy instructions (offset and length into the base)
// and insert instructions (literal bytes). Bases can themselves be deltas:
// a delta chain.
//
// # Thin packs
//
// A client that knows what the other side already has may send a thin pack:
// REF_DELTA entries whose bases are not in the pack but in the receiver's
// repository. The Reader resolves them through the BaseSource the caller
// gives (a lookup in the store); without one, or if it does not have the
// base, the pack is refused with ErrMissingBase. Bases from outside are not
// part of the result: only the pack's own objects are reported.
//
// # What the Reader checks
//
// The signature, version 2, every entry's type, that each inflated size is
// exactly the size its header declares and at most Config.MaxObjectSize
// (ErrTooLarge), that each delta's base size matches its base, every copy
// stays inside the base and the result has the declared size (ErrBadDelta),
// that deltas have no cycles and chains are at most Config.MaxChainDepth
// long, the trailing checksum (ErrBadChecksum), that nothing follows it, and
// that no object's ID (SHA-1 with collision detection, see package object)
// or the pack's checksum carries a collision attack (ErrCollision). A stream
// that ends early is ErrTruncated. It does not run object.Check: the caller
// decides which checks to apply to each object it is handed.
//
// # Memory
//
// The Reader streams: it never holds the pack. It copies the raw pack to a
// temporary file (Config.TempDir) while it reads, so that delta bases can be
// re-read by offset, and keeps per entry about 160 bytes of metadata (offset,
// type, base, ID, an index map; measured on 200,000 objects, half of them
// deltas: 32 MB). Resolved bodies are kept in an LRU cache of
// at most Config.CacheBytes; a base evicted from it is rebuilt from the file.
// So memory is about 160 bytes x objects + CacheBytes + a few objects of up
// to MaxObjectSize (the one being built, its base and its delta). With the
// defaults (512 MiB objects, 64 MiB cache) a pack of a million objects needs
// about 220 MiB plus the objects being built.
//
// # Caveats
//
// An Object's Body is only valid during the callback that receives it. IDs
// are SHA-1 only.
package pack
