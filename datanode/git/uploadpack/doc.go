// Package uploadpack is the server side of `git fetch` and `git clone`
// (Git's upload-pack) over smart HTTP, for a repository whose objects and
// refs live in a stratum cluster behind a backend.Backend.
//
// The HTTP layer (package smarthttp) owns the routes and headers and calls
// two functions:
//
//   - Advertise, for `GET info/refs?service=git-upload-pack` after the
//     "# service=" header: the v0 ref advertisement with capabilities, or the
//     v2 capability advertisement when the client sent `Git-Protocol:
//     version=2`;
//   - Serve, for the body of `POST git-upload-pack`: one v2 command
//     (ls-refs, fetch) or one round of the v0 stateless negotiation.
//
// # HEAD
//
// stratum's refs have no symbolic refs, so HEAD is not stored: it is
// advertised as a symref to refs/heads/main if that branch exists, else to
// refs/heads/master, else to the first branch by name. A repository with no
// branch advertises no HEAD (git then warns that it cloned an empty
// repository or checks nothing out).
//
// # Protocol support
//
// Protocol v2: ls-refs with symrefs, peel (annotated tags under refs/tags/
// only) and ref-prefix; fetch with want, have, done, the acknowledgments
// section with "ready", wait-for-done, thin-pack and ofs-delta (see
// Deltas), no-progress, include-tag, shallow, deepen, deepen-relative,
// deepen-since and deepen-not, filter blob:none, and the packfile section
// on side-band-64k with progress on band 2 and errors on band 3. Protocol
// v0 (stateless, as over HTTP): multi_ack_detailed, side-band-64k, the
// same shallow, deepen and filter requests, no-progress, include-tag. Not
// supported: filters other than blob:none, ref-in-want, sideband-all,
// packfile-uris, unborn, SHA-256 repositories.
//
// Partial clone works: a blob:none fetch sends commits and trees only, and
// the client's later fetch of the blobs it needs names them by ID.
//
// A want must be a ref's value or an object reachable from one
// (allow-reachable-sha1-in-want): the store holds every repository's
// objects, and this check keeps a reader inside the repository it may
// read. Anything else is refused with Git's "not our ref" error. A commit
// is looked for by a walk of the commits from the tips; a tree or blob
// (a partial clone's lazy fetch) by a walk of every commit and tree of the
// history, as costly as a clone's walk.
//
// # What goes in the pack
//
// The objects reachable from the wants and not from the commits the client
// has (its common haves and the excluded parents of the commits sent), as
// `git rev-list --objects wants --not haves` computes them: a walk of the
// commits newest first that stops once every queued commit is one the
// client has, then a walk of the trees level by level that skips every
// subtree the client's boundary trees hold. Shallow boundaries (the
// client's, and the new ones of deepen requests) are walked as commits
// without parents, as Git does.
//
// # Deltas
//
// When the client reads OFS deltas (every Git does), trees and blobs are
// grouped by path, and each is written as a delta of the previous version
// of the same path when the two share at least half of their bytes as a
// common prefix and suffix, in chains of at most 50 (git's pack.depth);
// the newest version stays whole. Such deltas (pack.AppendDelta: one copy,
// one insert, one copy) are cheap to compute and fit files edited in one
// place and trees with a changed entry; they are larger than git's, which
// search a window of candidates for the best match, and no delta is
// computed across paths (renames) nor reused from a stored pack. Thin packs
// are never sent: every delta's base is in the same pack.
//
// # Reads and memory
//
// Objects are read with Backend.Get in batches of 256 IDs: one call per
// level of trees, per level of the commit walk, per 256 objects of the
// pack. The commits and trees the walk reads are kept, up to keepBytes
// (32 MiB) per fetch, for the pack writer, which reads only the rest (past
// the bound they are read a second time). A linear history costs
// one Get per commit in the walk (a parent's ID is known only once its child
// is read).
//
// Memory is bounded by the number of objects involved, not their size:
// about 100 bytes per commit walked (its tree, parents and time), about 90
// bytes per object sent or skipped (its ID and mark, and its entry in the
// list to send), the kept commits and trees (at most keepBytes), and while
// writing up to three batches of object bodies (256 objects each, copied so
// that they can be written in pack order: the one being written, the one
// read ahead and the one being read) plus the delta base (one object). The
// pack is streamed as it is written, in side-band packets of 64 KiB. A
// batch of 256 objects is at most 256 times the largest object. Measured
// (BenchmarkClone with UPLOADPACK_BENCH_COMMITS=8000, a clone of 48,000
// objects and 8,000 commits, GOGC=10 so that uncollected garbage hardly
// counts): the heap grows by at most 17.8 MB, about 370 bytes per object,
// and the clone reads 48,241 objects; before the kept bodies and the
// read-ahead, 9.4 MB and 80,161 objects read (27 MB with the default
// GOGC=100 then).
//
// # Caveats
//
// A have is taken as common when the store holds the object, whichever
// repository it came from: a client that names an object learns, from the
// ACK, whether the store holds it (its content is never sent unless it is
// reachable from this repository's refs). Refs are read once per request:
// over stateless HTTP, a ref that moves between the advertisement and the
// fetch is still served if the client's want is reachable from the new
// refs.
package uploadpack
