// Package receivepack is the server side of `git push` over smart HTTP
// (protocol v0, the only one Git uses for push): the ref advertisement that
// answers `GET info/refs?service=git-receive-pack` (Advertise) and the body
// of `POST git-receive-pack` (Serve). It stores through a backend.Backend,
// so it holds no state of its own; package smarthttp routes requests to it.
//
// # What a push does
//
// Serve reads the command list (`old new ref`, capabilities on the first
// line), the push options, then the pack, and answers with report-status
// (`unpack ok|<reason>`, then `ok <ref>` or `ng <ref> <reason>` per ref).
// In order, and stopping at the first step that fails:
//
//  1. Commands are checked: ref names as `git check-ref-format` does
//     (api.ValidateRefName, the ref API's own rule), IDs as SHA-1 hex, no
//     ref named twice, at most Limits.MaxCommands.
//  2. The pack is parsed and verified (package pack): deltas resolved, thin
//     packs' bases read from the Backend, each ID computed with collision
//     detection, each object checked as `git fsck --strict` would
//     (object.Check), the pack at most Limits.MaxPackBytes and
//     Limits.MaxObjects. Any failure gives `unpack <reason>` and every ref
//     `ng <ref> unpacker error`; no ref moves. While the pack is read,
//     each full batch of verified objects (Limits.BatchObjects, BatchBytes)
//     is stored with Backend.Put, durably at quorum, so that storing runs
//     beside parsing: a pack that fails after its first full batch leaves
//     those objects stored, each verified and referenced by no ref, as a
//     push that loses its ref race leaves its objects. A pack under one
//     batch, or a push whose commands were refused in step 1, stores
//     nothing.
//  3. Connectivity, git's cheap rule: every object a new object names (a
//     commit's tree and parents, a tree's entries except gitlinks, a tag's
//     target) is in the pack or already stored (Backend.Has, batched), and
//     so is every new tip. Otherwise every ref gets `ng <ref> missing
//     necessary objects`.
//  4. The last, partial batch is stored, and every Put of the push has
//     returned, before any ref moves.
//  5. Every ref update is applied in ONE Backend.Update transaction whose
//     old values are the ones git sent.
//  6. A self-contained pack (the push that creates a repository) of at
//     least Limits.KeepCloneMinObjects objects is stored whole from the
//     copy the pack reader made of it (pack.Config.Spool), beside steps 3
//     and 4, and published for clones (package clonepack) once step 5
//     committed. This step never fails the push.
//
// # One transaction, with or without --atomic
//
// Git without --atomic updates each ref on its own and may accept some refs
// of a push and refuse others. stratum does not: every push is applied as
// one all-or-nothing transaction whether or not the client asked for
// --atomic. If one ref is stale (its old value is not the current one), or
// refused before the transaction (a bad name), no ref changes; that ref is
// reported `ng <ref> fetch first` (or its own reason) and the others
// `ng <ref> atomic push failure`, Git's own words for --atomic. So two
// pushes to one branch that both saw the same old value have exactly one
// winner; the loser is told to fetch first, and no update is ever lost.
// The cost: a client pushing many refs, one of them stale, must retry the
// others (git prints each ref's reason, so the user sees which one).
//
// # Choices that match a bare repository with Git's default configuration
//
//   - Non-fast-forward updates are accepted (receive.denyNonFastForwards is
//     false by default); the compare-and-swap on the old value is what keeps
//     concurrent pushes safe, not ancestry. The client refuses
//     non-fast-forwards itself unless forced.
//   - Deleting a ref that does not exist is reported `ok`, with a warning on
//     the progress band, as Git does: the state asked for holds.
//   - Pushing to a repository that does not exist creates it: a repository
//     is the set of its refs.
//   - Objects are checked strictly, like receive.fsckObjects=true with
//     strict messages (Git's default is no checks at all).
//
// # Caveats
//
//   - The connectivity rule trusts what is stored: an object already stored
//     is assumed to have its own references stored (true of every object a
//     push stored, since it passed this rule; an object PUT directly through
//     the object API may break it). It does not check that a commit's tree
//     is a tree, only that it exists.
//   - The response is written only once the whole request is read, since a
//     Go HTTP/1 server may not interleave reading and writing: progress is a
//     summary at the end, not a live counter.
//   - The pack waits in a temporary file (Limits.TempDir) while it is
//     read. Objects wait in memory only in batches: at most
//     Limits.PutConcurrency batches in flight plus the one being filled
//     (reading stops while every slot is busy), so about
//     (PutConcurrency + 1) x BatchBytes, one object larger than that
//     alone. Memory is also pack.Reader's (about 160 bytes per object
//     plus its cache) plus about 100 bytes per object and per distinct
//     referenced object for the connectivity check.
//   - Not supported: shallow pushes (`shallow` lines are refused), push
//     certificates, report-status-v2, SHA-256 repositories, hooks. Push
//     options are read, bounded, and returned in Result, not acted on.
package receivepack
