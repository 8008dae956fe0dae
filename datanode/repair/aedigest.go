package repair

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/objects"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// This file holds what two replicas compare in an anti-entropy round: per
// bucket (the OID's first byte), the XOR of SHA-256 of each OID they should
// both hold, and the number of them; and, for the buckets that differ, the
// OIDs themselves.

// aeListBuckets is the most buckets one ae-list call asks for, so a reply
// stays a fraction of the store and the callee scans its store at most
// 256/aeListBuckets times per round.
const aeListBuckets = 16

// aeDigests are the 256 bucket digests of the OIDs shared with one peer.
type aeDigests struct {
	count [api.AEBuckets]int
	sum   [api.AEBuckets][sha256.Size]byte
}

func (d *aeDigests) add(oid api.OID) {
	b := aeBucket(oid)
	h := sha256.Sum256([]byte(oid.String()))
	d.count[b]++
	for i := range h {
		d.sum[b][i] ^= h[i]
	}
}

func (d *aeDigests) reply(rev int64) api.AEDigestReply {
	out := api.AEDigestReply{RingRevision: rev, Buckets: make([]api.AEBucket, api.AEBuckets)}
	for b := range out.Buckets {
		out.Buckets[b] = api.AEBucket{Count: d.count[b], Digest: hex.EncodeToString(d.sum[b][:])}
	}
	return out
}

// differ lists the buckets whose digest or count is not the peer's.
func (d *aeDigests) differ(theirs api.AEDigestReply) []int {
	var out []int
	for b := range api.AEBuckets {
		t := theirs.Buckets[b]
		if t.Count != d.count[b] || t.Digest != hex.EncodeToString(d.sum[b][:]) {
			out = append(out, b)
		}
	}
	return out
}

// aeBucket is the OID's first byte.
func aeBucket(oid api.OID) int {
	b, _ := strconv.ParseUint(oid.String()[:2], 16, 8)
	return int(b)
}

// shared reports whether the view places oid on both a and b (on its ring
// or its write ring, as reads and repairs do).
func shared(v *clusterview.View, oid api.OID, a, b string) bool {
	key := []byte(oid.String())
	var hasA, hasB bool
	for _, rn := range objects.UniqueNodes(v.Ring.Replicas(key), v.Write.Replicas(key)) {
		hasA, hasB = hasA || rn.ID == a, hasB || rn.ID == b
	}
	return hasA && hasB
}

// localDigests computes the digests of the local OIDs shared with peer.
func (n *Server) localDigests(ctx context.Context, v *clusterview.View, peer string) (*aeDigests, error) {
	d := &aeDigests{}
	err := n.store.Range(ctx, func(oid api.OID, _ int64) bool {
		if shared(v, oid, n.cfg.ID, peer) {
			d.add(oid)
		}
		return true
	})
	return d, err
}

// localList returns a page of the local entries (copies and tombstones)
// of the given buckets shared with peer, in OID order: those after after,
// at most limit of them, and whether more may follow. It seeks to each
// bucket and reads at most limit+1 entries of each kind there, so its
// memory and reads do not grow with the store.
func (n *Server) localList(ctx context.Context, v *clusterview.View, peer string, buckets []int, after string, limit int) ([]api.AEEntry, bool, error) {
	bs := slices.Clone(buckets)
	slices.Sort(bs)
	bs = slices.Compact(bs)
	var out []api.AEEntry
	for _, b := range bs {
		if b < 0 || b >= api.AEBuckets || len(out) > limit {
			continue
		}
		from, to := fmt.Sprintf("%02x", b), ""
		if b+1 < api.AEBuckets {
			to = fmt.Sprintf("%02x", b+1)
		}
		if to != "" && after >= to {
			continue
		}
		from = max(from, after+"\x00") // strictly after after
		room := limit + 1 - len(out)
		var kinds [2][]api.AEEntry
		for k, tombstones := range []bool{false, true} {
			err := n.store.RangeEntriesFrom(ctx, tombstones, from, to, func(e store.Entry) bool {
				if shared(v, e.OID, n.cfg.ID, peer) {
					kinds[k] = append(kinds[k], api.AEEntry{OID: e.OID.String(), Stamp: e.Stamp, Deleted: e.Deleted})
				}
				return len(kinds[k]) < room
			})
			if err != nil {
				return nil, false, err
			}
		}
		merged := append(kinds[0], kinds[1]...)
		slices.SortFunc(merged, func(a, b api.AEEntry) int { return strings.Compare(a.OID, b.OID) })
		out = append(out, merged[:min(room, len(merged))]...)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// HandleAEDigest answers a peer's digest request over this node's copies.
func (n *Server) HandleAEDigest(ctx *fasthttp.RequestCtx) error {
	var req api.AEDigestRequest
	v, err := n.aeRequest(ctx, &req, &req.Peer, &req.RingRevision)
	if err != nil {
		return err
	}
	d, err := n.localDigests(n.life, v, req.Peer)
	if err != nil {
		return objects.StoreError(err)
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, d.reply(v.Ring.Revision()))
}

// HandleAEList answers a peer's list request for some buckets.
func (n *Server) HandleAEList(ctx *fasthttp.RequestCtx) error {
	var req api.AEListRequest
	v, err := n.aeRequest(ctx, &req, &req.Peer, &req.RingRevision)
	if err != nil {
		return err
	}
	if len(req.Buckets) == 0 || len(req.Buckets) > api.AEBuckets {
		return fmt.Errorf("%w: buckets must list 1 to %d buckets", api.ErrBadRequest, api.AEBuckets)
	}
	limit := req.Limit
	if limit <= 0 || limit > api.AEListMaxPage {
		limit = api.AEListMaxPage
	}
	entries, more, err := n.localList(n.life, v, req.Peer, req.Buckets, req.After, limit)
	if err != nil {
		return objects.StoreError(err)
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, api.AEListReply{Entries: entries, More: more})
}

// aeRequest checks a node-to-node anti-entropy call (fence, generation),
// decodes its body into req and refuses it unless the caller names itself
// and uses exactly this node's ring revision: both sides must judge
// "shared" with the same placement.
func (n *Server) aeRequest(ctx *fasthttp.RequestCtx, req any, peer *string, rev *int64) (*clusterview.View, error) {
	if err := n.obj.CheckPeer(ctx); err != nil {
		return nil, err
	}
	if err := json.NewDecoder(io.LimitReader(httpbody.Reader(ctx), 1<<20)).Decode(req); err != nil {
		return nil, fmt.Errorf("%w: bad anti-entropy request: %v", api.ErrBadRequest, err)
	}
	if *peer != string(ctx.Request.Header.Peek(api.HeaderNode)) {
		return nil, fmt.Errorf("%w: peer %q is not the caller", api.ErrBadRequest, *peer)
	}
	v := n.view()
	if v.Ring.Revision() != *rev {
		return nil, fmt.Errorf("%w: request used ring revision %d, this node has %d", api.ErrStaleRing, *rev, v.Ring.Revision())
	}
	return v, nil
}

// callAE posts an anti-entropy request to rn and decodes the reply.
func (n *Server) callAE(rn ring.Node, path string, rev int64, body, out any) error {
	// A digest or list scans the peer's whole store: allow it more time
	// than one object's call.
	return n.peers.Call(n.life, peer.Call{Addr: rn.Addr, Method: fasthttp.MethodPost, Path: path, Rev: rev, Body: body, Timeout: 4 * n.cfg.PeerTimeout, Read: func(b []byte) error {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("peer %s: bad %s reply: %v", rn.ID, path, err)
		}
		return nil
	}})
}

// remoteDigests asks rn for its digests of the OIDs shared with this node.
func (n *Server) remoteDigests(rn ring.Node, rev int64) (api.AEDigestReply, error) {
	var out api.AEDigestReply
	err := n.callAE(rn, api.PathAEDigest, rev, api.AEDigestRequest{Peer: n.cfg.ID, RingRevision: rev}, &out)
	if err == nil && len(out.Buckets) != api.AEBuckets {
		err = fmt.Errorf("peer %s: %d digest buckets, want %d", rn.ID, len(out.Buckets), api.AEBuckets)
	}
	return out, err
}

// remoteList asks rn for a page of its shared entries of buckets after
// after, sorted, and whether more may follow.
func (n *Server) remoteList(rn ring.Node, rev int64, buckets []int, after string, limit int) ([]api.AEEntry, bool, error) {
	var out api.AEListReply
	req := api.AEListRequest{Peer: n.cfg.ID, RingRevision: rev, Buckets: buckets, After: after, Limit: limit}
	if err := n.callAE(rn, api.PathAEList, rev, req, &out); err != nil {
		return nil, false, err
	}
	if out.More && len(out.Entries) == 0 {
		return nil, false, fmt.Errorf("peer %s: ae-list: more entries announced after an empty page", rn.ID)
	}
	for _, e := range out.Entries {
		if _, err := api.ParseOID(e.OID); err != nil {
			return nil, false, fmt.Errorf("peer %s: ae-list: %w", rn.ID, err)
		}
	}
	slices.SortFunc(out.Entries, func(a, b api.AEEntry) int { return strings.Compare(a.OID, b.OID) })
	return out.Entries, out.More, nil
}

// aeDiff is what one side of an anti-entropy comparison must send: copies
// (push) and tombstones (bury) for the peer, copies to fetch (pull) and
// tombstones to apply here (buryHere).
type aeDiff struct {
	push, pull     []api.AEEntry
	bury, buryHere []api.AEEntry
}

// diffEntries compares two sorted entry lists. A copy goes where the OID
// has nothing or an older tombstone; a tombstone goes only where a copy
// with a stamp no higher than its own is (a tie goes to the tombstone). A
// tombstone is not sent where there is nothing: it could only renew its
// age there, and tombstones must be able to expire.
func diffEntries(mine, theirs []api.AEEntry) aeDiff {
	var d aeDiff
	i, j := 0, 0
	for i < len(mine) || j < len(theirs) {
		switch {
		case j == len(theirs) || (i < len(mine) && mine[i].OID < theirs[j].OID):
			if !mine[i].Deleted {
				d.push = append(d.push, mine[i])
			}
			i++
		case i == len(mine) || mine[i].OID > theirs[j].OID:
			if !theirs[j].Deleted {
				d.pull = append(d.pull, theirs[j])
			}
			j++
		default:
			a, b := mine[i], theirs[j]
			switch {
			case a.Deleted == b.Deleted:
			case a.Deleted && a.Stamp >= b.Stamp:
				d.bury = append(d.bury, a)
			case a.Deleted:
				d.pull = append(d.pull, b)
			case b.Stamp >= a.Stamp:
				d.buryHere = append(d.buryHere, b)
			default:
				d.push = append(d.push, a)
			}
			i, j = i+1, j+1
		}
	}
	return d
}
