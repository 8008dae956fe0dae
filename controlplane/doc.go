// Package controlplane runs stratum's control plane: an embedded etcd member
// (Member) and a typed client (Client) for the records the cluster keeps in
// etcd. Data nodes never talk to etcd directly; they go through Client.
//
// A laptop runs one member; production runs three, or points the data nodes
// at an existing etcd cluster. A complete single-member control plane with
// one node registered:
//
//	m, err := controlplane.StartMember(ctx, controlplane.DefaultMemberConfig("/var/lib/stratum/etcd"))
//	if err != nil { ... }
//	defer m.Close()
//	c, err := controlplane.Dial(ctx, controlplane.DefaultClientConfig(m.ClientURLs()...))
//	if err != nil { ... }
//	defer c.Close()
//	lease, err := c.Register(ctx, ring.Node{ID: "n1", Addr: "127.0.0.1:9001"}, uuid.NewString())
//	err = c.JoinRing(ctx, ring.Node{ID: "n1", Addr: "127.0.0.1:9001"}, ring.DefaultConfig())
//
// # Key layout
//
// Every key lives under Prefix (default "/stratum/"):
//
//	<prefix>ring           RingRecord (JSON): replication factor, vnodes, members.
//	                       Its etcd ModRevision is the ring revision, the fencing
//	                       token every replica call carries.
//	<prefix>nodes/<id>     NodeRecord (JSON): id, addr, zone, generation. Attached
//	                       to the node's lease, so it vanishes when the node stops
//	                       renewing it: its presence is liveness.
//
// # Caveats
//
// Ring membership and liveness are separate on purpose: a node whose lease
// expired stays in the ring (its replicas are still where the ring says) until
// an operator removes it. Registration is exclusive: while a live record with
// another generation holds a node ID, a second process with that ID waits and
// then fails, so two processes never serve one identity.
//
// etcd's gRPC gateway is off in every member this package starts.
package controlplane
