// Package hints is a data node's durable queue of hinted handoffs: "peer P
// should hold object O but a write could not reach it". The coordinator of a
// write adds a hint when a replica failed or was skipped as DOWN; a delivery
// loop in package datanode sends the object to the peer once it is back and
// removes the hint. The queue knows nothing of HTTP, the ring or etcd.
//
// A typical use:
//
//	q, err := hints.Open(filepath.Join(dataDir, "hints"), hints.Options{})
//	if err != nil {
//		return err
//	}
//	defer q.Close()
//	err = q.Add("n3", oid)             // durable when it returns
//	for _, h := range q.List("n3", 100) { // oldest first
//		if deliver(h) == nil {
//			q.Remove(h.Peer, h.OID)
//		}
//	}
//	q.Expire(time.Now())               // drops hints older than MaxAge
//
// # Caveats
//
//   - A hint names an object, not its bytes: whoever delivers it must find a
//     copy (locally or on another replica). A hint whose object nobody holds
//     cannot be delivered.
//   - The queue is bounded: at most MaxPerPeer hints per peer (further ones
//     are dropped and counted) and none older than MaxAge once Expire runs.
//     What it drops must be found by anti-entropy (scrub, read repair,
//     drain), not by the queue.
//   - Add is synced; Remove and Expire are not. After a machine crash a
//     delivered hint may come back and be delivered again, which is harmless
//     because replica writes of content-addressed objects are idempotent.
package hints
