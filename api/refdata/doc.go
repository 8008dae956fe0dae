// Package refdata is the data model of refs as the ref store keeps it:
// repository and ref names and their rules, the changes a transaction
// makes, the version (epoch, sequence, transaction identity) that orders a
// partition's states, and a partition's snapshot.
//
// It is a leaf (the standard library only), so the ref store imports it
// and not `api`, the wire contract with its HTTP statuses; `api`
// re-exports every name here under its established one (api.RefChange is
// refdata.Change).
//
// # Caveats
//
// Names are part of the on-disk contract: a name these rules accept is a
// key in every replica's ref store, so loosening a rule is safe and
// tightening one strands refs already stored.
package refdata
