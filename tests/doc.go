// Package tests holds stratum's multi-node scenario tests: a real embedded
// etcd, real data nodes serving HTTP on loopback, real disks under
// t.TempDir(). The harness (harness_test.go) builds a cluster in one process;
// tests that are about crashes run the stratum binary as real processes.
package tests
