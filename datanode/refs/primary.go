package refs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/stratum-store/stratum/api"
)

// This file is the primary's side of docs/refs.md: transactions, takeover
// and catch-up. Each runs under the partition lock.

// txn runs one ref transaction as primary. On a conflict it returns the
// current values of the refs that did not match with api.ErrRefConflict.
func (r *Server) txn(ctx context.Context, repo string, t api.RefTxn, requireObjects bool) (api.RefTxnResult, error) {
	id, err := r.partitionOf(repo)
	if err != nil {
		return api.RefTxnResult{}, err
	}
	if requireObjects {
		if err := r.checkObjects(t); err != nil {
			return api.RefTxnResult{}, err
		}
	}
	ps := r.part(id)
	ps.lock.Lock()
	defer ps.lock.Unlock()
	if !r.serving(id) {
		return api.RefTxnResult{}, fmt.Errorf("%w: partition %d", api.ErrNotPrimary, id)
	}
	rec := *ps.rec.Load()
	res := api.RefTxnResult{Repo: repo, Partition: id, Epoch: rec.Epoch, Refs: []api.Ref{}}
	changes, conflicts, err := r.compare(id, repo, t)
	if err != nil {
		return res, err
	}
	if len(conflicts) > 0 {
		res.Refs = conflicts
		return res, fmt.Errorf("%w: %d of %d updates", api.ErrRefConflict, len(conflicts), len(t.Updates))
	}
	epoch, seq := rec.Epoch, r.store.Version(id).Seq+1
	if err := r.replicate(ctx, id, rec, api.RefApplyRequest{Partition: id, Epoch: epoch, Seq: seq, Changes: changes}); err != nil {
		return res, err
	}
	if err := r.store.Apply(id, epoch, seq, changes); err != nil {
		r.stepDown(id, "local apply failed", err)
		return res, fmt.Errorf("%w: %v", api.ErrOutcomeUnknown, err)
	}
	r.d.CountTxn("ok")
	for _, c := range changes {
		oid := c.OID
		if oid == "" {
			oid = api.ZeroOID
		}
		res.Refs = append(res.Refs, api.Ref{Name: c.Name, OID: oid})
	}
	res.Epoch = ps.rec.Load().Epoch
	return res, nil
}

// compare checks every update's old value against the local state.
func (r *Server) compare(id int, repo string, t api.RefTxn) (changes []api.RefChange, conflicts []api.Ref, err error) {
	for _, u := range t.Updates {
		cur, ok, err := r.store.Get(id, repo, u.Name)
		if err != nil {
			return nil, nil, err
		}
		if match := (!ok && api.IsZeroOID(u.Old)) || (ok && cur == u.Old); !match {
			if !ok {
				cur = api.ZeroOID
			}
			conflicts = append(conflicts, api.Ref{Name: u.Name, OID: cur})
		}
		oid := u.New
		if api.IsZeroOID(oid) {
			oid = ""
		}
		changes = append(changes, api.RefChange{Repo: repo, Name: u.Name, OID: oid})
	}
	return changes, conflicts, nil
}

// replicate sends req to every other in-sync member and waits for all.
// Members that fail are removed from in_sync (fenced by the epoch); if that
// is impossible the outcome is unknown and this node steps down.
func (r *Server) replicate(ctx context.Context, id int, rec api.Partition, req api.RefApplyRequest) error {
	failed := r.fanOut(api.WithoutID(rec.InSync, r.cfg.ID), func(node string) error {
		return r.call(ctx, node, "POST", api.PathRefApply, req, nil)
	})
	if len(failed) == 0 {
		return nil
	}
	next := rec
	for node := range failed {
		next.InSync = api.WithoutID(next.InSync, node)
	}
	next.PruneStores()
	epoch, err := r.d.Control.UpdatePartition(ctx, rec.Epoch, next)
	if err != nil {
		r.stepDown(id, "could not drop failed replicas from in_sync", err)
		r.d.CountTxn("unknown")
		return fmt.Errorf("%w: replicas %v failed (%v) and in_sync could not shrink: %v", api.ErrOutcomeUnknown, keys(failed), firstErr(failed), err)
	}
	next.Epoch = epoch
	r.part(id).adopt(next)
	r.part(id).active.Store(epoch)
	r.cfg.Logger.Warn("refs: dropped failed replicas from in_sync", "partition", id, "nodes", keys(failed), "epoch", epoch, "err", firstErr(failed))
	return nil
}

// fanOut runs call for every node in parallel and returns the failures.
func (r *Server) fanOut(nodes []string, call func(string) error) map[string]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := map[string]error{}
	for _, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := call(node); err != nil {
				mu.Lock()
				failed[node] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// takeover makes this node the serving primary of partition id at a new
// epoch: rewrite the record, begin, adopt the most advanced state, make
// every in-sync member equal (docs/refs.md, Takeover). It serves only under
// the registration it started with, and only at an epoch it wrote itself
// during this takeover, so the record it serves from is confirmed in etcd
// rather than taken from a cache the watch may not have updated yet.
func (r *Server) takeover(ctx context.Context, id int) error {
	ps := r.part(id)
	ps.lock.Lock()
	defer ps.lock.Unlock()
	lease, valid := r.d.Registration()
	if !valid {
		return fmt.Errorf("refs: partition %d: no valid lease to serve under", id)
	}
	confirmed := false // the record's epoch was written by this takeover
	for attempt := 0; attempt < 5; attempt++ {
		rec := *ps.rec.Load()
		if rec.Primary != r.cfg.ID || r.takenOver(ps, &rec) {
			return nil
		}
		if !rec.IsInSync(r.cfg.ID) {
			return fmt.Errorf("refs: partition %d names this node primary but not in sync", id)
		}
		if !confirmed {
			// A new epoch, written on the condition that the record is
			// still the one known: it confirms that no promotion the watch
			// has not shown yet replaced this node, and its begin fences
			// any apply of an older epoch still in flight (a delayed one
			// from before a step-down or a restart).
			if _, err := r.commit(ctx, id, rec, rec); err != nil {
				return fmt.Errorf("refs: partition %d: confirm the record at epoch %d: %w", id, rec.Epoch, err)
			}
			confirmed = true
			continue
		}
		answers, failed, err := r.beginAll(ctx, id, rec)
		if err != nil {
			return err
		}
		if len(failed) > 0 {
			if err := r.dropDown(ctx, id, rec, failed); err != nil {
				return err
			}
			continue // at the new epoch
		}
		final, err := r.converge(ctx, id, rec, answers)
		if err != nil {
			return err
		}
		if ps.rec.Load().Epoch != final {
			continue // the record moved on meanwhile: fence the newer epoch too
		}
		ps.leaseSeq.Store(lease)
		ps.active.Store(final)
		r.cfg.Logger.Debug("refs: serving as primary", "partition", id, "epoch", final)
		return nil
	}
	return fmt.Errorf("refs: partition %d: takeover did not settle", id)
}

// commit writes next over rec (conditioned on rec's epoch) and adopts it,
// returning the new epoch.
func (r *Server) commit(ctx context.Context, id int, rec, next api.Partition) (int64, error) {
	next.PruneStores()
	epoch, err := r.d.Control.UpdatePartition(ctx, rec.Epoch, next)
	if err != nil {
		return 0, err
	}
	next.Epoch = epoch
	r.part(id).adopt(next)
	return epoch, nil
}

// beginAll sends begin(epoch) to every in-sync member, itself included,
// and returns their answers and the members that did not answer. A
// stale_epoch answer means a newer record exists: the takeover stops.
func (r *Server) beginAll(ctx context.Context, id int, rec api.Partition) (map[string]api.RefReplicaState, map[string]error, error) {
	var mu sync.Mutex
	answers := map[string]api.RefReplicaState{}
	req := api.RefBeginRequest{Partition: id, Epoch: rec.Epoch}
	failed := r.fanOut(rec.InSync, func(node string) error {
		var a api.RefReplicaState
		var err error
		if node == r.cfg.ID {
			a.Version, err = r.store.Begin(id, rec.Epoch)
			a.Store = r.store.ID()
		} else {
			err = r.call(ctx, node, "POST", api.PathRefBegin, req, &a)
		}
		if err == nil {
			mu.Lock()
			answers[node] = a
			mu.Unlock()
		}
		return err
	})
	for node, err := range failed {
		if errors.Is(err, api.ErrStaleEpoch) || node == r.cfg.ID {
			return nil, nil, fmt.Errorf("refs: partition %d: begin at %s: %w", id, node, err)
		}
	}
	return answers, failed, nil
}

// dropDown removes members that did not answer begin from in_sync, but
// only those the control plane confirms DOWN with no live lease.
func (r *Server) dropDown(ctx context.Context, id int, rec api.Partition, failed map[string]error) error {
	for node, cause := range failed {
		next := rec
		next.InSync = api.WithoutID(rec.InSync, node)
		next.PruneStores()
		epoch, err := r.d.Control.DropDownFromInSync(ctx, rec.Epoch, next, node)
		if err != nil {
			return fmt.Errorf("refs: partition %d: member %s did not answer begin (%v) and cannot be dropped: %w", id, node, cause, err)
		}
		next.Epoch = epoch
		r.part(id).adopt(next)
		r.cfg.Logger.Warn("refs: dropped a DOWN member from in_sync", "partition", id, "node", node, "epoch", epoch)
		return nil // one at a time: the record moved on
	}
	return nil
}

// converge adopts the most advanced state among the in-sync members whose
// store is the one the record knows (a member that lost its disk answers
// with a new store ID and is no source), installs it on every member that
// differs or lost its disk, and records the members' store IDs. It returns
// the epoch the partition is at afterwards.
func (r *Server) converge(ctx context.Context, id int, rec api.Partition, answers map[string]api.RefReplicaState) (int64, error) {
	wiped := func(m string) bool { want := rec.Stores[m]; return want != "" && want != answers[m].Store }
	best := ""
	for m, a := range answers {
		if wiped(m) {
			r.cfg.Logger.Warn("refs: in-sync member lost its store; it is no source and will be reinstalled", "partition", id, "node", m)
			continue
		}
		if best == "" || answers[best].Version.Less(a.Version) || (a.Version == answers[best].Version && m == r.cfg.ID) {
			best = m
		}
	}
	if best == "" {
		return 0, fmt.Errorf("refs: partition %d: every in-sync member lost its store; refusing to serve an empty partition", id)
	}
	if best != r.cfg.ID {
		var snap api.RefSnapshot
		q := fmt.Sprintf("%s?partition=%d&epoch=%d", api.PathRefSnapshot, id, rec.Epoch)
		if err := r.call(ctx, best, "GET", q, nil, &snap); err != nil {
			return 0, fmt.Errorf("refs: partition %d: fetch the most advanced state from %s: %w", id, best, err)
		}
		if err := r.store.Install(id, rec.Epoch, snap); err != nil {
			return 0, err
		}
		r.cfg.Logger.Info("refs: adopted a more advanced state", "partition", id, "from", best, "version", snap.Version)
	}
	next := rec
	next.Stores = map[string]string{}
	var stale []string
	for m, a := range answers {
		next.Stores[m] = a.Store
		if m != r.cfg.ID && (a.Version != answers[best].Version || wiped(m)) {
			stale = append(stale, m)
		}
	}
	next.Stores[r.cfg.ID] = r.store.ID()
	if len(stale) > 0 {
		snap, err := r.store.Snapshot(id)
		if err != nil {
			return 0, err
		}
		failed := r.fanOut(stale, func(node string) error {
			return r.call(ctx, node, "POST", api.PathRefInstall, api.RefInstallRequest{Epoch: rec.Epoch, Snapshot: snap}, nil)
		})
		for node := range failed {
			next.InSync = api.WithoutID(next.InSync, node) // it answered begin: it can serve nothing older
		}
	}
	if maps.Equal(next.Stores, rec.Stores) && len(next.InSync) == len(rec.InSync) {
		return rec.Epoch, nil
	}
	epoch, err := r.commit(ctx, id, rec, next)
	if err != nil {
		return 0, fmt.Errorf("refs: partition %d: record the in-sync members: %w", id, err)
	}
	return epoch, nil
}

// catchUp brings members that are not in sync up to date and adds them to
// in_sync, holding the partition lock so no transaction runs meanwhile.
func (r *Server) catchUp(ctx context.Context, id int) error {
	ps := r.part(id)
	ps.lock.Lock()
	defer ps.lock.Unlock()
	if !r.serving(id) {
		return nil
	}
	rec := *ps.rec.Load()
	v := r.d.View()
	for _, node := range rec.Replicas {
		if rec.IsInSync(node) || !v.State(node).ReadTarget() || v.State(node) == api.StateSuspect {
			continue
		}
		snap, err := r.store.Snapshot(id)
		if err != nil {
			return err
		}
		var state api.RefReplicaState
		if err := r.call(ctx, node, "POST", api.PathRefInstall, api.RefInstallRequest{Epoch: rec.Epoch, Snapshot: snap}, &state); err != nil {
			r.cfg.Logger.Debug("refs: catch-up failed", "partition", id, "node", node, "err", err)
			continue
		}
		next := rec
		next.InSync = append(append([]string{}, rec.InSync...), node)
		next.Stores = maps.Clone(rec.Stores)
		if next.Stores == nil {
			next.Stores = map[string]string{}
		}
		next.Stores[node] = state.Store
		epoch, err := r.commit(ctx, id, rec, next)
		if err != nil {
			// The write may have happened: serving on at the old epoch with
			// an in_sync that may already include node could acknowledge a
			// transaction node never saw. Step down and take over again.
			r.stepDown(id, "could not record a caught-up member", err)
			return fmt.Errorf("refs: partition %d: add %s to in_sync: %w", id, node, err)
		}
		ps.active.Store(epoch)
		r.cfg.Logger.Debug("refs: member caught up", "partition", id, "node", node, "epoch", epoch)
		rec = next
	}
	return nil
}

// primaryLoop runs takeovers and catch-ups for the partitions this node
// leads, on a kick or every RefCheckInterval, until ctx is done.
func (r *Server) PrimaryLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.CheckInterval)
	defer t.Stop()
	var sum takeoverSummary
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
		before := r.ServingCount()
		r.tend(ctx)
		sum.pass(ctx, r, before)
	}
}

// takeoverQuiet is how long takeovers must have stopped before they are
// summed up in one INFO line.
const takeoverQuiet = 3 * time.Second

// takeoverSummary gathers takeovers into one INFO line: a start-up or a
// failover is a burst of them (and a record change makes the primary
// confirm its partition again), which an operator wants to read as one
// event. The line is logged once this node serves every partition it
// leads, every record is known, and no takeover happened for takeoverQuiet;
// each pass's takeovers are logged at DEBUG.
type takeoverSummary struct {
	taken int
	last  time.Time
}

func (s *takeoverSummary) pass(ctx context.Context, r *Server, before int) {
	after, led := r.ServingCount(), len(r.Led())
	if after > before {
		s.taken += after - before
		s.last = time.Now()
		r.cfg.Logger.Debug("refs: took over partitions", "taken_over", after-before, "serving", after, "led", led)
	}
	if s.taken > 0 && after == led && time.Since(s.last) >= takeoverQuiet && r.recordsKnown() {
		r.cfg.Logger.Log(ctx, slog.LevelInfo, "refs: serving ref partitions as primary", "partitions", after, "takeovers", s.taken, "led", led)
		s.taken = 0
	}
}

// tend runs one pass over the led partitions with a few workers.
func (r *Server) tend(ctx context.Context) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				ps := r.part(id)
				var err error
				if rec := ps.rec.Load(); rec != nil && !r.takenOver(ps, rec) {
					err = r.takeover(ctx, id)
				} else {
					err = r.catchUp(ctx, id)
				}
				if err != nil && ctx.Err() == nil {
					r.cfg.Logger.Warn("refs: partition not settled", "partition", id, "err", err)
				}
			}
		}()
	}
	for _, id := range r.Led() {
		select {
		case work <- id:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

// recordsKnown reports whether this node knows every partition's record.
func (r *Server) recordsKnown() bool {
	cfg := r.layout.Load()
	if cfg == nil {
		return false
	}
	for id := 0; id < cfg.Count; id++ {
		if _, ok := r.record(id); !ok {
			return false
		}
	}
	return true
}

func keys(m map[string]error) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func firstErr(m map[string]error) error {
	for _, e := range m {
		return e
	}
	return nil
}
