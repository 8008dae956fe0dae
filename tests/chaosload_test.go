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

// The object workload of the chaos run: writers put unique immutable
// objects of mixed sizes at quorum through random nodes, and readers read
// acknowledged ones back at quorum, counting what no fault may cause.

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
}

// objectLoad runs the writers and readers and keeps what they saw.
type objectLoad struct {
	cfg    objectLoadConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	acked   map[api.OID]ackedObject
	order   []api.OID // acknowledged OIDs, for readers to pick from
	writes  opCounts
	reads   opCounts
	large   int      // acknowledged objects above 1 MiB
	stale   []string // reads that began after the ack and got 404
	corrupt []string // reads whose bytes do not hash to the OID or differ
	unknown []string // the errors of writes whose outcome is unknown
}

// largeObjectBytes is the store's default large-object threshold: bigger
// objects live in files of their own.
const largeObjectBytes = 1 << 20

// startObjectLoad starts writers and readers; stop ends them.
func startObjectLoad(c *procCluster, cfg objectLoadConfig) *objectLoad {
	if cfg.Via == nil {
		cfg.Via = c.Nodes
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &objectLoad{cfg: cfg, cancel: cancel, acked: map[api.OID]ackedObject{}}
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
	cls := make([]*client.Client, len(l.cfg.Via))
	for i, n := range l.cfg.Via {
		cls[i], _ = client.New(client.Config{Endpoint: n.URL(), Timeout: 10 * time.Second})
	}
	return cls
}

func (l *objectLoad) writer(ctx context.Context, id int, rng *rand.Rand) {
	defer l.wg.Done()
	cls := l.nodeClients()
	for i := 0; ctx.Err() == nil; i++ {
		time.Sleep(25 * time.Millisecond) // a bounded rate
		data := append([]byte(fmt.Sprintf("seed %d writer %d object %d\n", l.cfg.Seed, id, i)), randomBytes(rng.Int63(), objectSize(rng))...)
		began := time.Now()
		_, err := cls[rng.Intn(len(cls))].PutBytes(context.Background(), data, api.SHA256, l.cfg.Level)
		at := time.Now()
		l.mu.Lock()
		if l.writes.add(err) == outcomeUnknown {
			l.unknown = append(l.unknown, err.Error())
		}
		if err == nil {
			oid, _ := api.Digest(api.SHA256, data)
			l.acked[oid] = ackedObject{data: data, began: began, acked: at}
			l.order = append(l.order, oid)
			if len(data) > largeObjectBytes {
				l.large++
			}
		}
		l.mu.Unlock()
	}
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
		oid, want, ok := l.pick(rng)
		if !ok {
			continue
		}
		node := rng.Intn(len(cls))
		began := time.Now()
		got, err := cls[node].GetBytes(context.Background(), oid, l.cfg.Level)
		l.mu.Lock()
		l.reads.add(err)
		what := fmt.Sprintf("%s via %s at %s, %s after its ack", oid, l.cfg.Via[node].ID, began.Format("15:04:05.000"), began.Sub(want.acked).Round(time.Millisecond))
		switch {
		case errors.Is(err, api.ErrNotFound):
			l.stale = append(l.stale, what)
		case errors.Is(err, api.ErrDigestMismatch):
			l.corrupt = append(l.corrupt, what+": "+err.Error())
		case err == nil && !bytes.Equal(got, want.data):
			l.corrupt = append(l.corrupt, what+": verified bytes differ from the written ones")
		}
		l.mu.Unlock()
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

// snapshot returns the acknowledged objects (after stop).
func (l *objectLoad) snapshot() map[api.OID][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[api.OID][]byte, len(l.acked))
	for oid, a := range l.acked {
		out[oid] = a.data
	}
	return out
}
