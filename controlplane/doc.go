// Package controlplane runs stratum's control plane: an embedded etcd member
// (Member) and a typed client (Client) for the records the cluster keeps in
// etcd. Data nodes never talk to etcd directly; they go through Client.
//
// The failure detector's leader (RunDetector, detector.go) also runs the
// partition planner's loop (plannerloop.go): it reads the records, calls
// planner.Plan from the pure package controlplane/planner, and writes each
// action as a transaction fenced by its election key. This package keeps
// the record access, the loop and the detector; what to change is decided
// in controlplane/planner alone.
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
// Every key lives under Prefix (default "/stratum/"). This is every key the
// control plane writes, and the data nodes through Client; nothing else
// goes under Prefix. TestKeyLayoutDocumented fails when the code builds or
// leaves a key this list does not name.
//
//	<prefix>ring               RingRecord (JSON): replication factor, vnodes, members.
//	                           Its etcd ModRevision is the ring revision, the fencing
//	                           token every replica call carries. Created by the first
//	                           join, rewritten by every join and removal, never deleted.
//	<prefix>nodes/<id>         NodeRecord (JSON): id, addr, zone, generation. Attached
//	                           to the node's lease, so it vanishes when the node stops
//	                           renewing it: its presence is liveness.
//	<prefix>members/<id>       api.Member (JSON): state, generation, recent SUSPECT
//	                           times, drained. Written at registration, by the node
//	                           (ACTIVE, drained) and by the detector leader (verdicts,
//	                           drain); deleted when the node is removed.
//	<prefix>joins/<id>         joinRequest (JSON): node, replicas, vnodes. A node whose
//	                           etcd user may not write the ring asks the detector
//	                           leader to add it; kept until the node is removed.
//	<prefix>detector/<lease>   the detector election (etcd concurrency.Election; the
//	                           value is the candidate's name), attached to its session
//	                           lease. The leader's key's create revision fences every
//	                           write the leader makes (verdicts, admissions, planner).
//	<prefix>partitions/config  api.PartitionConfig (JSON): count and replicas. Written
//	                           once, when the cluster gets its partitions; never changed.
//	<prefix>partitions/p/<id>  api.Partition (JSON), id zero-padded to 5 digits: primary,
//	                           replicas, in-sync, stores. Its ModRevision is the epoch.
//	                           Written by the planner and by primaries, never deleted.
//	<prefix>tokens/<id>        api.Token (JSON): name, scopes, hash of the secret.
//	                           From `stratum token create` until `stratum token revoke`.
//	<prefix>cluster-secret     hex of 32 random bytes that nodes present to each other
//	                           when TLS is off. Created once by the first to ask (the
//	                           detector leader, at election); never changed.
//	<prefix>repair/paused      RFC 3339 time of the pause. Exists while repair is paused
//	                           cluster-wide (`stratum rebalance pause` / `resume`).
//
// etcd users and roles (EnableAccess, GrantNode) live in etcd's auth store,
// not under Prefix.
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
