// Package ring is stratum's consistent-hash ring: it maps a key (an object
// ID) to the ordered set of nodes that store it. A Ring is immutable and
// built by one pure function, New; it does no I/O and takes no locks, so
// every data node and client that builds a ring from the same ring record
// gets the same answers.
//
// A ring of three nodes in three zones, and the replica set of one object:
//
//	nodes := []ring.Node{
//		{ID: "n1", Addr: "10.0.0.1:7000", Zone: "a"},
//		{ID: "n2", Addr: "10.0.0.2:7000", Zone: "b"},
//		{ID: "n3", Addr: "10.0.0.3:7000", Zone: "c"},
//	}
//	r, err := ring.New(rev, nodes, ring.DefaultConfig())
//	if err != nil { ... }
//	set := r.Replicas([]byte(oid.String())) // 3 distinct nodes; set[0] is the primary
//	if r.Owns(self.ID, []byte(oid.String())) { ... }
//
// rev is the etcd revision of the ring record. The ring only carries it
// (Revision), but it is the fencing token replicas compare, so a ring and
// its revision always travel together.
//
// # How a key is placed
//
// Each node owns Config.VNodes points on a circle of 2^64 positions; point i
// of node id sits at the first 8 bytes (big-endian) of SHA-256(id + "#" + i),
// i written in decimal. Two points at one position are ordered by node ID.
// A key sits at the first 8 bytes of SHA-256(key). Its primary owns the
// first point at or after the key, wrapping past the top; the rest of the
// replica set is found by walking on clockwise, skipping nodes already
// chosen, until Config.Replicas nodes (or all nodes, if fewer) are chosen.
//
// If any node has a Zone, the walk runs twice from the same start. The
// first pass takes only nodes whose zone is not yet in the set, so a set
// spans min(N, zones) zones; the second fills the remaining slots with any
// node not yet chosen. A node without a Zone is then in the zone "". Zones
// never change the primary, only the nodes after it.
//
// Adding a node moves only the keys it now owns: about 1/(n+1) of the
// primaries, all to the new node. Removing one moves only its keys.
//
// # Using a ring
//
// A ring never changes. On a membership change, build a new Ring and
// publish it whole (an atomic.Pointer[ring.Ring] is enough); readers holding
// the old one keep a consistent view.
//
// # Caveats
//
// Placement is part of the on-disk contract. Data already written sits on
// the nodes the ring named when it was written, so anything that changes
// the answer of Replicas for a stored key moves data, and until it is moved
// readers look in the wrong place. That includes:
//
//   - the hash (SHA-256, first 8 bytes, big-endian) or the point naming
//     ("<ID>#<i>");
//   - Config.VNodes, including its default when the ring record leaves it
//     zero, and Config.Replicas;
//   - the walk: its direction, the tie-break, the zone passes;
//   - a node's ID (renaming a node is removing one and adding another),
//     though not its Addr;
//   - the bytes passed as key: the hex and the binary form of one object ID
//     land in different places, so every caller must hash the same form.
//
// testdata/placement.golden pins the placement of fixed keys on fixed
// rings; TestPlacementGolden fails on any such change. Rewrite it (go test
// ./ring -update) only together with a migration that moves the data.
//
// Every party must also use the same ring: two rings that differ in a
// single member give different answers for some keys. That is why the ring
// record carries the revision and replicas reject calls made with a stale
// one.
package ring
