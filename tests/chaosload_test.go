package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"syscall"
	"time"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

// The object workload of the chaos run: writers put objects of mixed
// sizes at quorum through random nodes, and readers read them back,
// counting what no fault may cause. With Mixed, writers also delete
// objects, put deleted ones again and put batches, and readers also read
// batches (each batch with one item twice); every operation goes into an
// objHistory, which decides what each read had to find (objhistory_test.go).

// opCounts counts operations by outcome. Failed means the server answered
// with an error, or the connection was refused (nothing was sent); Unknown
// means no answer (a timeout, a cut connection), so the operation may or
// may not have taken effect.
type opCounts struct {
	Attempted    int `json:"attempted"`
	Acknowledged int `json:"acknowledged"`
	Failed       int `json:"failed"`
	Unknown      int `json:"unknown"`
}

type outcome int

const (
	outcomeAcked outcome = iota
	outcomeFailed
	outcomeUnknown
)

// add counts an operation by its error, and returns its outcome.
func (o *opCounts) add(err error) outcome {
	o.Attempted++
	var re *api.RemoteError
	switch {
	case err == nil:
		o.Acknowledged++
		return outcomeAcked
	case errors.As(err, &re), errors.Is(err, syscall.ECONNREFUSED):
		o.Failed++
		return outcomeFailed
	}
	o.Unknown++
	return outcomeUnknown
}

// ackedObject is an acknowledged write: its bytes, and when the write
// began and was acknowledged.
type ackedObject struct {
	data         []byte
	began, acked time.Time
}

// objectLoadConfig shapes the object workload.
type objectLoadConfig struct {
	Seed             int64
	Writers, Readers int
	Level            api.Consistency // of writes and reads
	// Via are the nodes requests go through, one picked at random for
	// each; default every node.
	Via []*procNode
	// URLs, when set, are the endpoints instead of Via (an in-process
	// cluster).
	URLs []string
	// Mixed adds deletes, puts of deleted objects, batch puts and batch
	// gets to the single puts and gets.
	Mixed bool
}

// objectLoad runs the writers and readers and keeps what they saw.
type objectLoad struct {
	cfg    objectLoadConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup

	urls, names []string
	hist        *objHistory

	mu      sync.Mutex
	acked   map[api.OID]ackedObject // the first acknowledged put of each OID
	order   []api.OID               // acknowledged OIDs, for readers to pick from
	deleted []api.OID               // OIDs with an acknowledged delete, to put again
	writes  opCounts                // single puts, large ones and puts again included
	reads   opCounts                // single gets
	// Mixed only: batch puts and gets count requests; deletes.
	batchPuts, batchReads, deletes opCounts
	largePuts                      opCounts // single puts above 1 MiB
	putsAgain                      int      // acknowledged puts of deleted objects
	large                          int      // acknowledged objects above 1 MiB
	corrupt                        []string // reads whose bytes do not hash to the OID or differ
	unknown                        []string // the errors of writes whose outcome is unknown
}

// largeObjectBytes is the store's default large-object threshold: bigger
// objects live in files of their own.
const largeObjectBytes = 1 << 20

// startObjectLoad starts writers and readers; stop ends them.
func startObjectLoad(c *procCluster, cfg objectLoadConfig) *objectLoad {
	if cfg.Via == nil && cfg.URLs == nil {
		cfg.Via = c.Nodes
	}
	return startObjectLoadAt(cfg)
}

// startObjectLoadAt starts writers and readers on cfg.Via or cfg.URLs.
func startObjectLoadAt(cfg objectLoadConfig) *objectLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &objectLoad{cfg: cfg, cancel: cancel, acked: map[api.OID]ackedObject{}, hist: newObjHistory(), urls: cfg.URLs, names: cfg.URLs}
	if cfg.URLs == nil {
		for _, n := range cfg.Via {
			l.urls, l.names = append(l.urls, n.URL()), append(l.names, n.ID)
		}
	}
	for w := 0; w < cfg.Writers; w++ {
		rng := rand.New(rand.NewSource(cfg.Seed*1000 + int64(w)))
		l.wg.Add(1)
		go l.writer(ctx, w, rng)
	}
	for r := 0; r < cfg.Readers; r++ {
		rng := rand.New(rand.NewSource(cfg.Seed*1000 + 500 + int64(r)))
		l.wg.Add(1)
		go l.reader(ctx, rng)
	}
	return l
}

func (l *objectLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// objectSize draws a size: about one in 40 just above 1 MiB (the large
// object path), the rest a few KiB.
func objectSize(rng *rand.Rand) int {
	if rng.Intn(40) == 0 {
		return largeObjectBytes + 1 + rng.Intn(largeObjectBytes)
	}
	return 256 + rng.Intn(8<<10)
}

// nodeClients are one client per node; requests pick one at random.
func (l *objectLoad) nodeClients() []*client.Client {
	cls := make([]*client.Client, len(l.urls))
	for i, u := range l.urls {
		cls[i], _ = client.New(client.Config{Endpoint: u, Timeout: 10 * time.Second})
	}
	return cls
}

func (l *objectLoad) writer(ctx context.Context, id int, rng *rand.Rand) {
	defer l.wg.Done()
	cls := l.nodeClients()
	for i := 0; ctx.Err() == nil; i++ {
		time.Sleep(25 * time.Millisecond) // a bounded rate
		cl := cls[rng.Intn(len(cls))]
		fresh := func(size int) []byte {
			return append([]byte(fmt.Sprintf("seed %d writer %d object %d\n", l.cfg.Seed, id, i)), randomBytes(rng.Int63(), size)...)
		}
		switch draw := rng.Intn(100); {
		case !l.cfg.Mixed || draw >= 30:
			l.put(cl, fresh(objectSize(rng)), false)
		case draw < 12:
			if oid, _, ok := l.pick(rng); ok {
				l.delete(cl, oid)
			}
		case draw < 18:
			if data, ok := l.pickDeleted(rng); ok {
				l.put(cl, data, true)
			}
		default:
			objs := make([]client.Object, 2+rng.Intn(5))
			for k := range objs {
				data := fresh(256 + rng.Intn(4<<10))
				data = append(data, byte(k))
				objs[k].OID, _ = api.Digest(api.SHA256, data)
				objs[k].Data = data
			}
			if data, ok := l.pickDeleted(rng); ok && len(data) <= largeObjectBytes {
				objs[0].OID, _ = api.Digest(api.SHA256, data)
				objs[0].Data = data
			}
			l.putBatch(cl, append(objs, objs[rng.Intn(len(objs))])) // one item twice
		}
	}
}

// put puts data with one request and records it; again marks a put of a
// deleted object.
func (l *objectLoad) put(cl *client.Client, data []byte, again bool) {
	began := time.Now()
	_, err := cl.PutBytes(context.Background(), data, api.SHA256, l.cfg.Level)
	at := time.Now()
	oid, _ := api.Digest(api.SHA256, data)
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.writes.add(err)
	l.hist.write(oid, writeOf(writePut, o, began, at))
	if len(data) > largeObjectBytes {
		l.largePuts.add(err)
	}
	if o == outcomeUnknown {
		l.unknown = append(l.unknown, err.Error())
	}
	if err == nil {
		l.ackedPut(oid, data, began, at)
		if again {
			l.putsAgain++
		}
	}
}

// ackedPut keeps an acknowledged put of oid (the first one of each OID).
func (l *objectLoad) ackedPut(oid api.OID, data []byte, began, at time.Time) {
	if _, ok := l.acked[oid]; ok {
		return
	}
	l.acked[oid] = ackedObject{data: data, began: began, acked: at}
	l.order = append(l.order, oid)
	if len(data) > largeObjectBytes {
		l.large++
	}
}

// writeOf is a recorded write with the outcome o.
func writeOf(kind writeKind, o outcome, began, at time.Time) objWrite {
	w := objWrite{kind: kind, began: began, ended: at, acked: o == outcomeAcked}
	if o == outcomeUnknown {
		w.ended = time.Time{}
	}
	return w
}

// putBatch puts objs (an item may repeat) with one batch request; each
// item is a put of its own, acknowledged when its item has no error.
func (l *objectLoad) putBatch(cl *client.Client, objs []client.Object) {
	began := time.Now()
	reply, err := cl.PutBatch(context.Background(), objs, l.cfg.Level)
	at := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.batchPuts.add(err)
	if o == outcomeUnknown {
		l.unknown = append(l.unknown, "batch: "+err.Error())
	}
	if err == nil && len(reply.Items) != len(objs) {
		l.corrupt = append(l.corrupt, fmt.Sprintf("batch put of %d objects answered %d items", len(objs), len(reply.Items)))
	}
	for k, obj := range objs {
		item := o
		if err == nil && (k >= len(reply.Items) || reply.Items[k].Error != nil || reply.Items[k].OID != obj.OID.String()) {
			item = outcomeFailed
		}
		l.hist.write(obj.OID, writeOf(writePut, item, began, at))
		if item == outcomeAcked {
			l.ackedPut(obj.OID, obj.Data, began, at)
		}
	}
}

// delete deletes oid with one request and records it.
func (l *objectLoad) delete(cl *client.Client, oid api.OID) {
	began := time.Now()
	_, err := cl.Delete(context.Background(), oid, l.cfg.Level)
	at := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.deletes.add(err)
	l.hist.write(oid, writeOf(writeDelete, o, began, at))
	if o == outcomeUnknown {
		l.unknown = append(l.unknown, "delete: "+err.Error())
	}
	if o == outcomeAcked {
		l.deleted = append(l.deleted, oid)
	}
}

// pickDeleted returns the bytes of an object deleted before, to put again.
func (l *objectLoad) pickDeleted(rng *rand.Rand) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.deleted) == 0 {
		return nil, false
	}
	return l.acked[l.deleted[rng.Intn(len(l.deleted))]].data, true
}

// pick returns an acknowledged object, every other time one of the 20
// acknowledged last (a stale read is likeliest right after the ack), else
// any; every read of it starts after its ack.
func (l *objectLoad) pick(rng *rand.Rand) (api.OID, ackedObject, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.order) == 0 {
		return api.OID{}, ackedObject{}, false
	}
	from := 0
	if rng.Intn(2) == 0 {
		from = max(0, len(l.order)-20)
	}
	oid := l.order[from+rng.Intn(len(l.order)-from)]
	return oid, l.acked[oid], true
}

func (l *objectLoad) reader(ctx context.Context, rng *rand.Rand) {
	defer l.wg.Done()
	cls := l.nodeClients()
	for ctx.Err() == nil {
		time.Sleep(15 * time.Millisecond)
		node := rng.Intn(len(cls))
		if l.cfg.Mixed && rng.Intn(5) == 0 {
			var oids []api.OID
			for k := 0; k < 2+rng.Intn(5); k++ {
				if oid, want, ok := l.pick(rng); ok && len(want.data) <= largeObjectBytes {
					oids = append(oids, oid)
				}
			}
			if len(oids) > 0 {
				l.getBatch(cls[node], l.names[node], append(oids, oids[0])) // one item twice
			}
			continue
		}
		oid, want, ok := l.pick(rng)
		if !ok {
			continue
		}
		began := time.Now()
		got, err := cls[node].GetBytes(context.Background(), oid, l.cfg.Level)
		l.mu.Lock()
		l.reads.add(err)
		l.judgeRead(oid, want.data, got, err, objRead{began: began, ended: time.Now(), via: "get via " + l.names[node]})
		l.mu.Unlock()
	}
}

// getBatch reads oids with one batch request; each item is a read of its
// own, over the request's whole interval.
func (l *objectLoad) getBatch(cl *client.Client, via string, oids []api.OID) {
	began := time.Now()
	type item struct {
		oid  api.OID
		data []byte
		err  error
	}
	var items []item
	err := cl.GetMany(context.Background(), oids, l.cfg.Level, func(oid api.OID, data []byte, err error) {
		items = append(items, item{oid, data, err})
	})
	r := objRead{began: began, ended: time.Now(), via: "batch get via " + via}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batchReads.add(err)
	for _, it := range items {
		l.judgeRead(it.oid, l.acked[it.oid].data, it.data, it.err, r)
	}
}

// judgeRead records a read's definitive answer and checks its bytes;
// l.mu is held.
func (l *objectLoad) judgeRead(oid api.OID, want, got []byte, err error, r objRead) {
	what := fmt.Sprintf("%s %s at %s", oid, r.via, r.began.Format("15:04:05.000"))
	switch {
	case errors.Is(err, api.ErrNotFound):
		l.hist.read(oid, r)
	case errors.Is(err, api.ErrDigestMismatch):
		l.corrupt = append(l.corrupt, what+": "+err.Error())
	case err == nil && !bytes.Equal(got, want):
		l.corrupt = append(l.corrupt, what+": verified bytes differ from the written ones")
	case err == nil:
		r.found = true
		l.hist.read(oid, r)
	}
}

// ackedAfter waits up to d for a write acknowledged after t, and reports
// whether one was.
func (l *objectLoad) ackedAfter(t time.Time, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		l.mu.Lock()
		ok := len(l.order) > 0 && l.acked[l.order[len(l.order)-1]].acked.After(t)
		l.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// settled splits the written objects by what a read beginning now must
// find (after stop): present ones with their bytes, and absent ones.
func (l *objectLoad) settled() (present map[api.OID][]byte, absent []api.OID) {
	l.hist.mu.Lock()
	oids := make([]api.OID, 0, len(l.hist.writes))
	for oid := range l.hist.writes {
		oids = append(oids, oid)
	}
	l.hist.mu.Unlock()
	present = map[api.OID][]byte{}
	for _, oid := range oids {
		switch l.hist.expectNow(oid) {
		case expectPresent:
			present[oid] = l.acked[oid].data
		case expectAbsent:
			absent = append(absent, oid)
		}
	}
	return present, absent
}

// readThrough reads every object of oids at the load's level, alone
// through one node (the next in turn) or, with every, through every node
// of the load (l.urls), four at a time; then all the small ones in batch
// GETs through every node (readBatches). The answers go into the history, whose checker
// then judges them like the workload's own reads. A read without a
// definitive answer is retried a few times.
func (l *objectLoad) readThrough(oids []api.OID, every bool) {
	cls := l.nodeClients()
	type job struct {
		oid  api.OID
		node int
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				l.readFinal(cls[j.node], l.names[j.node], j.oid)
			}
		}()
	}
	for k, oid := range oids {
		for i := range cls {
			if every || i == k%len(cls) {
				jobs <- job{oid, i}
			}
		}
	}
	close(jobs)
	wg.Wait()
	l.readBatches(l.small(oids))
}

// small returns the objects of oids at most 1 MiB large, which batch GETs
// return.
func (l *objectLoad) small(oids []api.OID) []api.OID {
	var out []api.OID
	for _, oid := range oids {
		if len(l.acked[oid].data) <= largeObjectBytes {
			out = append(out, oid)
		}
	}
	return out
}

// readBatches reads oids (small objects) in batch GETs through every node
// of the load and records the answers in the history.
func (l *objectLoad) readBatches(oids []api.OID) {
	for i, cl := range l.nodeClients() {
		for start := 0; start < len(oids); start += 1000 {
			l.getBatch(cl, l.names[i]+" (final)", oids[start:min(start+1000, len(oids))])
		}
	}
}

// readFinal reads oid once through cl (retrying a read without a
// definitive answer) and records it.
func (l *objectLoad) readFinal(cl *client.Client, via string, oid api.OID) {
	for try := 0; try < 5; try++ {
		began := time.Now()
		got, err := cl.GetBytes(context.Background(), oid, l.cfg.Level)
		if errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrDigestMismatch) || err == nil {
			l.mu.Lock()
			l.judgeRead(oid, l.acked[oid].data, got, err, objRead{began: began, ended: time.Now(), via: "final get via " + via})
			l.mu.Unlock()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
