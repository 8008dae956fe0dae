package objects

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/clusterview"
	"github.com/stratum-store/stratum/datanode/httpbody"
	"github.com/stratum-store/stratum/datanode/peer"
	"github.com/stratum-store/stratum/datanode/store"
	"github.com/stratum-store/stratum/ring"
)

// This file holds the read side of the batch endpoints: presence (:has)
// and bodies (:get), each asked of every node once for all its objects.

// indexReply is a replica's answer to :has: per OID, whether it holds a
// copy or a tombstone, and that entry's stamp. A peer that predates the
// tombstone fields sends only Present.
type indexReply struct {
	Present []bool      `json:"present"`
	Deleted []bool      `json:"deleted,omitempty"`
	Stamps  []api.Stamp `json:"stamps,omitempty"`
}

// HandleReplicaHas answers what this node's index holds for the listed
// OIDs: a copy, a tombstone or nothing, with stamps. A text list is
// answered in the text form (oidLinesType), a JSON one in JSON.
func (n *Server) HandleReplicaHas(ctx *fasthttp.RequestCtx) error {
	if err := n.CheckPeer(ctx); err != nil {
		return err
	}
	text := bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("text/plain"))
	var oids []api.OID
	var err error
	if text {
		oids, err = httpbody.OIDLines(ctx, n.bodies)
	} else {
		oids, err = n.readOIDList(ctx)
	}
	if err != nil {
		return err
	}
	rep, err := n.localIndex(oids)
	if err != nil {
		return StoreError(err)
	}
	if text {
		ctx.SetContentType(oidLinesType)
		ctx.SetBody(appendIndexLines(nil, rep))
		return nil
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, rep)
}

// The text form of a replica :has, which a quorum GET asks for every read
// (coalescedHas) and so must cost little: the request body lists OIDs, one
// per line, and the reply answers each with one line, in request order:
//
//	copy <stamp>
//	tombstone <stamp>
//	none
//
// Its encoding costs a fraction of the JSON form's (which was half the CPU
// of a coalesced presence request, 2026-12-06). The JSON form stays for
// peers that predate this one: such a peer answers a text body 400, and
// indexGroup asks it again in JSON.
const oidLinesType = "text/plain; charset=utf-8"

func appendOIDLines(b []byte, oids []api.OID, idx []int) []byte {
	for _, i := range idx {
		b = append(append(b, oids[i].String()...), '\n')
	}
	return b
}

func appendIndexLines(b []byte, rep indexReply) []byte {
	for i := range rep.Present {
		switch {
		case rep.Present[i]:
			b = append(b, "copy "...)
		case rep.Deleted[i]:
			b = append(b, "tombstone "...)
		default:
			b = append(b, "none\n"...)
			continue
		}
		b = append(strconv.AppendUint(b, uint64(rep.Stamps[i]), 10), '\n')
	}
	return b
}

// parseIndexLines reads a text :has reply of exactly k lines.
func parseIndexLines(body []byte, k int) (indexReply, error) {
	rep := indexReply{Present: make([]bool, k), Deleted: make([]bool, k), Stamps: make([]api.Stamp, k)}
	for i := range k {
		end := bytes.IndexByte(body, '\n')
		if end < 0 {
			return indexReply{}, fmt.Errorf("a has reply of %d lines, want %d", i, k)
		}
		line := body[:end]
		body = body[end+1:]
		word, stamp, _ := bytes.Cut(line, []byte(" "))
		switch string(word) {
		case "copy":
			rep.Present[i] = true
		case "tombstone":
			rep.Deleted[i] = true
		case "none":
			continue
		default:
			return indexReply{}, fmt.Errorf("has reply line %d: %q", i+1, line)
		}
		st, err := strconv.ParseUint(string(stamp), 10, 64)
		if err != nil {
			return indexReply{}, fmt.Errorf("has reply line %d: %q", i+1, line)
		}
		rep.Stamps[i] = api.Stamp(st)
	}
	if len(body) > 0 {
		return indexReply{}, fmt.Errorf("a has reply of more than %d lines", k)
	}
	return rep, nil
}

// localIndex reads this node's index entry of each OID (without reading
// or verifying the bytes).
func (n *Server) localIndex(oids []api.OID) (indexReply, error) {
	rep := indexReply{Present: make([]bool, len(oids)), Deleted: make([]bool, len(oids)), Stamps: make([]api.Stamp, len(oids))}
	for i, oid := range oids {
		e, err := n.store.Meta(n.life, oid)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrCorrupt): // a damaged entry is no copy
		case err != nil:
			return indexReply{}, err
		default:
			rep.Present[i], rep.Deleted[i], rep.Stamps[i] = !e.Deleted, e.Deleted, e.Stamp
		}
	}
	return rep, nil
}

// oidPresence is what the replicas asked said about one OID, judged as a
// single read judges its answers (readOutcome): the higher stamp wins, a
// tie goes to the tombstone.
type oidPresence struct {
	answers int         // definitive answers from the current placement, plus copies found on former owners
	copies  []ring.Node // replicas with a copy
	stamps  []api.Stamp // the stamp of each copy
	tombs   int         // replicas with a tombstone
	tomb    api.Stamp   // the highest tombstone stamp
}

// deleted reports whether a tombstone wins over every copy seen.
func (p oidPresence) deleted() bool {
	return p.tombs > 0 && p.tomb >= slices.Max(append([]api.Stamp{0}, p.stamps...))
}

// holders are the replicas whose copy is newer than every tombstone seen:
// the ones a read may serve and a ref may count on.
func (p oidPresence) holders() []ring.Node {
	var out []ring.Node
	for i, rn := range p.copies {
		if p.tombs == 0 || p.stamps[i] > p.tomb {
			out = append(out, rn)
		}
	}
	return out
}

// presence asks every readable replica of every OID (the current owners,
// then the former ones, view.readSet) what its index holds, one request
// per node. A replica that refuses this node's ring as stale gives no
// answer; then, as a single read does (retryStale), the node reloads its
// ring and asks again under the newer one, at most StaleRetries times.
// The last round's answers are returned whatever they hold: the caller
// judges them (too few answers is its quorum error).
func (n *Server) presence(oids []api.OID) ([]oidPresence, *clusterview.View) {
	type round struct {
		pres []oidPresence
		v    *clusterview.View
	}
	r, _ := retryStale(n.life, n, func() (round, error) {
		pres, v, err := n.presenceOnce(oids)
		return round{pres, v}, err
	})
	return r.pres, r.v
}

// presenceOnce is one round of presence under the ring this node has; its
// error is a staleRingError when some replica refused that ring.
func (n *Server) presenceOnce(oids []api.OID) ([]oidPresence, *clusterview.View, error) {
	v := n.view()
	groups := map[ring.Node][]int{}
	formerOf := make([][]ring.Node, len(oids))
	for i, oid := range oids {
		current, former := v.ReadSet([]byte(oid.String()))
		for _, rn := range append(current, former...) {
			groups[rn] = append(groups[rn], i)
		}
		formerOf[i] = former
	}
	out := make([]oidPresence, len(oids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var stale error
	for rn, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := n.indexGroup(n.life, rn, oids, idx, v.Ring.Revision())
			if err != nil {
				n.logger.Warn("batch has failed on a replica", "replica", rn.ID, "err", err)
				if errors.Is(err, api.ErrStaleRing) {
					mu.Lock()
					stale = staleRingError{err}
					mu.Unlock()
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for j, i := range idx {
				out[i].add(rn, rep, j, slices.ContainsFunc(formerOf[i], clusterview.SameID(rn)))
			}
		}()
	}
	wg.Wait()
	return out, v, stale
}

// answer is what rep says of its j-th OID: a copy, a tombstone, and the
// entry's stamp (absent fields, from a peer that predates them, read as
// no tombstone and stamp 0).
func (rep indexReply) answer(j int) (present, deleted bool, stamp api.Stamp) {
	if j < len(rep.Stamps) {
		stamp = rep.Stamps[j]
	}
	return rep.Present[j], j < len(rep.Deleted) && rep.Deleted[j], stamp
}

// add records replica rn's answer rep[j]; a former owner's absence (or
// tombstone) is no answer, but its tombstone's stamp still counts.
func (p *oidPresence) add(rn ring.Node, rep indexReply, j int, former bool) {
	present, deleted, stamp := rep.answer(j)
	switch {
	case present:
		p.copies, p.stamps = append(p.copies, rn), append(p.stamps, stamp)
	case deleted:
		p.tombs, p.tomb = p.tombs+1, max(p.tomb, stamp)
		if former {
			return
		}
	case former:
		return
	}
	p.answers++
}

// batchHas classifies each OID like a single read would: present once a
// copy wins over every tombstone and enough answered, missing once enough
// answered without one (or a tombstone wins), unknown otherwise.
func (n *Server) batchHas(ctx *fasthttp.RequestCtx, level api.Consistency) error {
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	pres, v := n.presence(oids)
	need := level.Required(v.Ring.ReplicationFactor())
	reply := api.HasReply{Present: []string{}, Missing: []string{}}
	for i, oid := range oids {
		switch {
		case pres[i].answers >= need && len(pres[i].holders()) > 0:
			reply.Present = append(reply.Present, oid.String())
		case pres[i].answers >= need:
			reply.Missing = append(reply.Missing, oid.String())
		default:
			reply.Unknown = append(reply.Unknown, oid.String())
		}
	}
	return httpbody.WriteJSON(ctx, fasthttp.StatusOK, reply)
}

// indexGroup asks rn (or this node's own index) what it holds for oids[idx].
func (n *Server) indexGroup(ctx context.Context, rn ring.Node, oids []api.OID, idx []int, rev int64) (indexReply, error) {
	if rn.ID == n.cfg.ID {
		group := make([]api.OID, len(idx))
		for j, i := range idx {
			group[j] = oids[i]
		}
		return n.localIndex(group)
	}
	var out indexReply
	c := peer.Call{Addr: rn.Addr, Method: fasthttp.MethodPost, Path: api.PathReplicaHas, Rev: rev, Timeout: n.cfg.PeerTimeout,
		Raw: appendOIDLines(nil, oids, idx), ContentType: oidLinesType}
	c.Read = func(body []byte) (err error) {
		if out, err = parseIndexLines(body, len(idx)); err != nil {
			return fmt.Errorf("peer %s: bad has reply: %w", rn.ID, err)
		}
		return nil
	}
	err := n.peers.Call(ctx, c)
	if !errors.Is(err, api.ErrBadRequest) {
		return out, err
	}
	// A peer that predates the text form: ask it in JSON.
	c.Raw, c.ContentType = nil, ""
	c.Read = func(body []byte) error {
		if err := json.Unmarshal(body, &out); err != nil || len(out.Present) != len(idx) {
			return fmt.Errorf("peer %s: bad has reply: %v", rn.ID, err)
		}
		return nil
	}
	err = n.PostOIDs(ctx, c, oids, idx)
	return out, err
}

func UniqueNodes(a, b []ring.Node) []ring.Node {
	out := append([]ring.Node{}, a...)
	for _, rn := range b {
		if !slices.ContainsFunc(out, clusterview.SameID(rn)) {
			out = append(out, rn)
		}
	}
	return out
}

// PostOIDs posts the OIDs oids[idx] to a peer's batch endpoint (c.Path,
// under c.Rev) as c's body, and hands the reply body to c.Read before the
// response is released. ctx carries the request ID the call is sent with.
func (n *Server) PostOIDs(ctx context.Context, c peer.Call, oids []api.OID, idx []int) error {
	list := api.OIDList{OIDs: make([]string, len(idx))}
	for j, i := range idx {
		list.OIDs[j] = oids[i].String()
	}
	c.Method, c.Body = fasthttp.MethodPost, list
	return n.peers.Call(ctx, c)
}

// batchGet streams the objects as frames, in request order. It learns
// which replicas hold each object with one presence request per node, reads
// local copies from the store and fetches the others in one request per
// holding node; an object whose fetched copy fails verification is read
// again alone. An object that cannot be returned gets a missing frame with
// its error code, decided as a single read would decide it. At `one`, the
// objects this node owns and holds as small copies skip the presence
// round (localOne).
func (n *Server) batchGet(ctx *fasthttp.RequestCtx, level api.Consistency) error {
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	bodies, pres, need := n.gatherBodies(oids, level)
	ctx.SetContentType("application/octet-stream")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		// fasthttp runs this after the handler returned, in a goroutine of
		// its own: it is counted in n.inflight and stops at the first
		// write error (the client left) or when the node closes.
		if !n.inflight.Add() {
			return
		}
		defer n.inflight.Done()
		n.writeFrames(w, oids, bodies, pres, need, level)
	})
	return nil
}

// writeFrames writes one frame per OID in request order. An object whose
// batched copy was missing or bad is read alone; an object too large for a
// batch gets a too_large frame; one whose tombstone wins is not found.
func (n *Server) writeFrames(w *bufio.Writer, oids []api.OID, bodies [][]byte, pres []oidPresence, need int, level api.Consistency) {
	for i, oid := range oids {
		if n.life.Err() != nil {
			return
		}
		data, err := n.verdict(oid, bodies[i], pres[i], need, level)
		if err != nil {
			_, code := api.StatusOf(err)
			err = api.WriteMissingFrame(w, oid, code)
		} else {
			err = api.WriteFrame(w, oid, data)
		}
		if err != nil {
			return
		}
	}
	w.Flush()
}

// verdict is one object's answer in a batch GET: its batched bytes, or,
// when the batch could not carry them, a read of it alone, or the error
// its frame carries (quorum not reached, not found, too large).
func (n *Server) verdict(oid api.OID, data []byte, p oidPresence, need int, level api.Consistency) ([]byte, error) {
	switch {
	case p.answers < need:
		return nil, fmt.Errorf("%w: %d replicas answered", api.ErrQuorumNotReached, p.answers)
	case len(p.holders()) == 0:
		return nil, api.ErrNotFound
	case data == nil:
		return n.readAlone(oid, level)
	}
	return data, nil
}

// ReadMany is a batch GET in process: it reads oids at level and calls
// fn for each, in order, with its verified bytes or the error its frame
// would carry (api.ErrNotFound, ErrQuorumNotReached, ErrTooLarge for an
// object a batch does not carry). It is for callers inside the node that
// checked the caller's read scope themselves (the Git gateway's fetches);
// fn must not keep data past its call.
func (n *Server) ReadMany(oids []api.OID, level api.Consistency, fn func(oid api.OID, data []byte, err error)) {
	bodies, pres, need := n.gatherBodies(oids, level)
	for i, oid := range oids {
		data, err := n.verdict(oid, bodies[i], pres[i], need, level)
		fn(oid, data, err)
	}
}

// readAlone reads one object of a batch GET with a single quorum read.
func (n *Server) readAlone(oid api.OID, level api.Consistency) ([]byte, error) {
	p, err := n.Get(n.life, oid, level)
	if err != nil {
		return nil, err
	}
	p.Hold(1)
	defer p.Release()
	if p.File != nil {
		return nil, fmt.Errorf("%w: %s is %d bytes; GET it alone", api.ErrTooLarge, oid, p.Size)
	}
	return p.Data, nil
}

// fetchBodies returns the verified bytes of every object that enough
// replicas answered for and some replica holds a copy of newer than every
// tombstone seen: local copies from the store, the others batched per
// holding node. Entries it could not get verified stay nil.
func (n *Server) fetchBodies(oids []api.OID, pres []oidPresence, need int, rev int64) [][]byte {
	bodies := make([][]byte, len(oids))
	groups := map[ring.Node][]int{}
	for i := range oids {
		holders := pres[i].holders()
		if pres[i].answers < need || len(holders) == 0 {
			continue
		}
		src := holders[0]
		for _, h := range holders {
			if h.ID == n.cfg.ID {
				src = h
			}
		}
		groups[src] = append(groups[src], i)
	}
	var wg sync.WaitGroup
	for rn, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.fetchGroup(rn, oids, idx, rev, bodies)
		}()
	}
	wg.Wait()
	return bodies
}

// fetchGroup fills bodies[i] for the objects idx held by rn. Each index is
// written by exactly one group, so no lock is needed.
func (n *Server) fetchGroup(rn ring.Node, oids []api.OID, idx []int, rev int64, bodies [][]byte) {
	if rn.ID == n.cfg.ID {
		for _, i := range idx {
			obj, err := n.store.Get(n.life, oids[i])
			if err != nil {
				continue
			}
			if obj.Body != nil { // a large object: batches carry small ones only
				obj.Body.Close()
				continue
			}
			bodies[i] = obj.Data
		}
		return
	}
	timeout := peer.Timeout(n.cfg.PeerTimeout, n.cfg.PeerMinRate, int64(len(idx))*n.cfg.Store.LargeThreshold)
	c := peer.Call{Addr: rn.Addr, Path: api.PathReplicaGet, Rev: rev, Timeout: timeout}
	c.Read = func(body []byte) error {
		r := bufio.NewReader(bytes.NewReader(body))
		for _, i := range idx {
			oid, data, code, err := api.ReadFrame(r, n.cfg.Store.LargeThreshold)
			if err != nil {
				return err
			}
			if code == "" && oid == oids[i] && api.Verify(oid, data) == nil {
				bodies[i] = data
			}
		}
		return nil
	}
	err := n.PostOIDs(n.life, c, oids, idx)
	if err != nil {
		n.logger.Warn("batch fetch failed", "replica", rn.ID, "err", err)
	}
}

// HandleReplicaGet sends this node's verified copies of the listed small
// objects as frames with their stamps; large, missing or deleted ones get a
// missing frame.
func (n *Server) HandleReplicaGet(ctx *fasthttp.RequestCtx) error {
	if err := n.CheckPeer(ctx); err != nil {
		return err
	}
	oids, err := n.readOIDList(ctx)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, oid := range oids {
		obj, stamp, err := n.LocalCopy(n.life, oid)
		switch {
		case err != nil:
			_, code := api.StatusOf(err)
			api.WriteMissingFrame(&buf, oid, code)
		case obj.Body != nil:
			obj.Body.Close()
			api.WriteMissingFrame(&buf, oid, "too_large")
		default:
			api.WriteStampedFrame(&buf, oid, obj.Data, stamp)
		}
	}
	ctx.SetContentType("application/octet-stream")
	ctx.SetBody(buf.Bytes())
	return nil
}

// gatherBodies returns, per OID, the verified bytes a batch GET can send
// (nil where it cannot), what the replicas said, and how many answers the
// level needs.
func (n *Server) gatherBodies(oids []api.OID, level api.Consistency) ([][]byte, []oidPresence, int) {
	bodies, pres, rest := n.localOne(oids, level)
	if len(rest) == 0 {
		return bodies, pres, 1
	}
	sub := make([]api.OID, len(rest))
	for j, i := range rest {
		sub[j] = oids[i]
	}
	subPres, v := n.presence(sub)
	need := level.Required(v.Ring.ReplicationFactor())
	subBodies := n.fetchBodies(sub, subPres, need, v.Ring.Revision())
	for j, i := range rest {
		pres[i], bodies[i] = subPres[j], subBodies[j]
	}
	return bodies, pres, need
}

// localOne answers, at `one`, the OIDs this node owns (current placement)
// and holds as a small copy, from that copy: one definitive answer is all
// `one` asks, and a single `one` GET reads the local copy first too
// (docs/consistency.md: it may return an object whose delete this replica
// missed). Those need no presence round on the peers, which is most of a
// clone's cost when Git serves through a node that owns its objects. It
// returns the bodies, the presence of the answered ones (this node's
// copy), and the indexes of the OIDs left to the presence round: all of
// them at any other level.
func (n *Server) localOne(oids []api.OID, level api.Consistency) ([][]byte, []oidPresence, []int) {
	bodies, pres := make([][]byte, len(oids)), make([]oidPresence, len(oids))
	rest := make([]int, 0, len(oids))
	v := n.view()
	self := ring.Node{ID: n.cfg.ID, Addr: n.cfg.Addr}
	for i, oid := range oids {
		if level != api.One || !slices.ContainsFunc(v.Ring.Replicas([]byte(oid.String())), clusterview.SameID(self)) {
			rest = append(rest, i)
			continue
		}
		obj, err := n.store.Get(n.life, oid)
		switch {
		case err != nil: // absent, deleted, damaged: the presence round decides
			rest = append(rest, i)
		case obj.Body != nil: // a large object: batches carry small ones only
			obj.Body.Close()
			rest = append(rest, i)
		default:
			bodies[i] = obj.Data
			pres[i] = oidPresence{answers: 1, copies: []ring.Node{self}, stamps: []api.Stamp{0}}
		}
	}
	return bodies, pres, rest
}

// StoredAtQuorum checks that every one of oids is stored at quorum, for a
// ref transaction (refs.Deps.Stored): 422 missing_object when enough
// replicas answered and fewer than a quorum hold a copy newer than every
// tombstone seen (a deleted object is missing), 503 quorum_not_reached
// when too few answered to say.
func (n *Server) StoredAtQuorum(oids []api.OID) error {
	pres, v := n.presence(oids)
	need := api.Quorum.Required(v.Ring.ReplicationFactor())
	for i, oid := range oids {
		switch p := pres[i]; {
		case p.answers < need:
			return fmt.Errorf("%w: cannot tell whether %s is stored (%d of %d replicas answered)", api.ErrQuorumNotReached, oid, p.answers, need)
		case p.deleted():
			return fmt.Errorf("%w: %s was deleted", api.ErrMissingObject, oid)
		case len(p.holders()) < need:
			return fmt.Errorf("%w: %s is on %d replicas, quorum is %d", api.ErrMissingObject, oid, len(p.holders()), need)
		}
	}
	return nil
}
