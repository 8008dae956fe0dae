//go:build !stratum_bug_oldownerdeletes

package planted

// OldOwnerDeletes: when true, a delete goes only to the object's current owners (not to the old placement during a ring change), and a push refused as superseded by a tombstone counts as a delivered copy, so a drained or former owner can bring deleted objects back.
const OldOwnerDeletes = false
