package ring

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
)

// This file holds the placement algorithm. Everything here is part of the
// on-disk contract (see the package Caveats): a change to the hash, the
// vnode naming, the tie-break or the walk order moves stored data.

// KeyPosition returns where key sits on the ring: the first 8 bytes of
// SHA-256(key) read as a big-endian uint64.
func KeyPosition(key []byte) uint64 {
	h := sha256.Sum256(key)
	return binary.BigEndian.Uint64(h[:8])
}

// vnodePosition returns where virtual node index of node id sits: the first
// 8 bytes of SHA-256(id + "#" + decimal index). buf is scratch space; the
// grown buffer is returned for reuse.
func vnodePosition(buf []byte, id string, index int) (uint64, []byte) {
	buf = append(buf[:0], id...)
	buf = append(buf, '#')
	buf = strconv.AppendInt(buf, int64(index), 10)
	h := sha256.Sum256(buf)
	return binary.BigEndian.Uint64(h[:8]), buf
}

// buildPoints places vnodes points for each node and returns the positions in
// ascending order with the owning node index of each. nodes must be sorted by
// ID, so breaking position ties by owner index breaks them by node ID.
func buildPoints(nodes []Node, vnodes int) ([]uint64, []int32) {
	type point struct {
		pos   uint64
		owner int32
	}
	all := make([]point, 0, len(nodes)*vnodes)
	var buf []byte
	for i, n := range nodes {
		for v := 0; v < vnodes; v++ {
			var pos uint64
			pos, buf = vnodePosition(buf, n.ID, v)
			all = append(all, point{pos, int32(i)})
		}
	}
	slices.SortFunc(all, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.owner, b.owner))
	})
	points := make([]uint64, len(all))
	owners := make([]int32, len(all))
	for i, p := range all {
		points[i], owners[i] = p.pos, p.owner
	}
	return points, owners
}

// Replicas returns the replica set of key: min(N, Len()) distinct nodes.
// The first is the primary, the owner of the first point at or after the
// key's position (wrapping past the top). The others follow clockwise; when
// the ring has zones, nodes from zones not yet in the set come first (see
// the package doc). It returns nil on an empty ring. The slice is new on
// every call; the caller may keep or change it.
func (r *Ring) Replicas(key []byte) []Node {
	var buf [8]int32
	idx := r.replicaIndexes(KeyPosition(key), buf[:0])
	if len(idx) == 0 {
		return nil
	}
	out := make([]Node, len(idx))
	for i, j := range idx {
		out[i] = r.nodes[j]
	}
	return out
}

// Owns reports whether the node with the given ID is in Replicas(key),
// without building that slice. An ID not in the ring owns nothing.
func (r *Ring) Owns(id string, key []byte) bool {
	i, ok := r.indexOf(id)
	if !ok {
		return false
	}
	var buf [8]int32
	return slices.Contains(r.replicaIndexes(KeyPosition(key), buf[:0]), int32(i))
}

// replicaIndexes appends to dst the node indexes of the replica set of a key
// at position pos.
//
// Without zones it is one clockwise walk collecting distinct nodes. With
// zones, a first walk takes only nodes whose zone is not yet in the set and
// stops at min(N, zones) nodes; a second walk from the same start fills the
// remaining slots with any node not yet chosen.
func (r *Ring) replicaIndexes(pos uint64, dst []int32) []int32 {
	want := min(r.cfg.Replicas, len(r.nodes))
	if want == 0 {
		return dst
	}
	start := r.search(pos)
	if r.zones > 0 {
		dst = r.walk(start, dst, min(want, r.zones), true)
	}
	return r.walk(start, dst, want, false)
}

// search returns the index of the first point at or after pos, wrapping to
// 0 past the last point.
func (r *Ring) search(pos uint64) int {
	i, _ := slices.BinarySearch(r.points, pos)
	if i == len(r.points) {
		return 0
	}
	return i
}

// walk visits the points clockwise from start, at most once round the ring,
// appending each acceptable owner to dst until dst holds want nodes.
func (r *Ring) walk(start int, dst []int32, want int, newZoneOnly bool) []int32 {
	n := len(r.points)
	for step := 0; step < n && len(dst) < want; step++ {
		i := start + step
		if i >= n {
			i -= n
		}
		if o := r.owners[i]; r.accepts(dst, o, newZoneOnly) {
			dst = append(dst, o)
		}
	}
	return dst
}

// accepts reports whether node o may join the set chosen so far: it must not
// be in it, and with newZoneOnly its zone must not be in it either.
func (r *Ring) accepts(chosen []int32, o int32, newZoneOnly bool) bool {
	for _, c := range chosen {
		if c == o || newZoneOnly && r.zoneOf[c] == r.zoneOf[o] {
			return false
		}
	}
	return true
}
