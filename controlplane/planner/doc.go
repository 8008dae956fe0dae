// Package planner decides where stratum's ref partitions live. It is pure,
// as pure as ring: Plan takes a PlanInput (the partition configuration,
// the partition, member and node records as plain values) and returns the
// []Action that moves the records one step toward a balanced, available
// placement. It does no I/O, reads no clock, logs nothing and keeps no
// state between calls; the same input gives the same actions.
//
// The loop that feeds it lives in controlplane (plannerloop.go): on the
// failure detector's leader it reads the records from etcd, fills in what
// only it can know (which lost primaries may be replaced now, whether the
// cluster may be created yet), calls Plan and writes each Action as an etcd
// transaction conditioned on the Action's Epoch and on its own leadership.
// Plan's doc is the specification: its numbered rules and invariants are
// what TestPlanRules and the simulations check.
//
// A round by hand, as `stratum partitions plan` previews one:
//
//	in := planner.PlanInput{
//		Config:      api.PartitionConfig{Count: 8, Replicas: 3},
//		Members:     map[string]api.Member{"a": {ID: "a", State: api.StateActive}, ...},
//		Live:        map[string]bool{"a": true, ...},
//		AllowCreate: true,
//	}
//	actions := planner.Plan(in)
//	parts := planner.ApplyActions(in.Partitions, actions) // as the loop would leave them
//
// # Caveats
//
// Placement order is part of the contract: rendezvous scores are
// SHA-256 of "<partition>/<node>", so changing the hash or the format moves
// primaries and replicas on every running cluster. Plan trusts its input:
// it never reads etcd again, so an action planned from a stale view is only
// safe because the loop's transaction checks the Epoch.
package planner
