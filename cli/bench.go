package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

func benchCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "bench",
		Usage: "write N objects with C concurrent clients, read them back in random order, report throughput and latency",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "objects", Aliases: []string{"n"}, Value: 10000, Usage: "objects to write and read"},
			&ucli.IntFlag{Name: "size", Value: 4096, Usage: "object size in bytes (ignored with --git-mix)"},
			&ucli.BoolFlag{Name: "git-mix", Usage: "draw sizes from a distribution shaped like Git objects (see docs/performance.md)"},
			&ucli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: 16, Usage: "concurrent clients"},
			&ucli.BoolFlag{Name: "ring", Usage: "send each request straight to a replica (ring-aware client) instead of through --endpoint"},
			&ucli.IntFlag{Name: "batch", Usage: "move objects in batch requests of this many (POST /v1/objects:put and :get)"},
			&ucli.BoolFlag{Name: "refs", Usage: "benchmark ref transactions instead: create N refs, compare-and-swap each, read each back"},
			consistencyFlag(),
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the object contents and read order"},
			jsonFlag(),
		},
		Action: runBench,
	}
}

// benchConfig is one benchmark run.
type benchConfig struct {
	Objects     int             `json:"objects"`
	Size        int             `json:"size,omitempty"`
	GitMix      bool            `json:"git_mix"`
	Concurrency int             `json:"concurrency"`
	RingAware   bool            `json:"ring_aware"`
	Level       api.Consistency `json:"consistency"`
	Seed        uint64          `json:"seed"`
	Batch       int             `json:"batch,omitempty"`
	Refs        bool            `json:"refs,omitempty"`
}

// phaseReport is the outcome of one phase (put or get).
type phaseReport struct {
	Phase     string  `json:"phase"`
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	MBPerSec  float64 `json:"mb_per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
	FirstErr  string  `json:"first_error,omitempty"`
}

type benchReport struct {
	Config benchConfig   `json:"config"`
	Phases []phaseReport `json:"phases"`
}

func runBench(c *ucli.Context) error {
	level, err := api.ParseConsistency(c.String("consistency"))
	if err != nil {
		return usageError{err}
	}
	cfg := benchConfig{Objects: c.Int("objects"), Size: c.Int("size"), GitMix: c.Bool("git-mix"),
		Concurrency: c.Int("concurrency"), RingAware: c.Bool("ring"), Level: level, Seed: c.Uint64("seed"), Batch: c.Int("batch"), Refs: c.Bool("refs")}
	if cfg.Objects < 1 || cfg.Concurrency < 1 || (!cfg.GitMix && cfg.Size < 0) {
		return usagef("--objects and --concurrency must be >= 1 and --size >= 0")
	}
	cl, err := newClient(c, client.Config{Endpoint: c.String("endpoint"), RingAware: cfg.RingAware, Timeout: time.Minute})
	if err != nil {
		return usageError{err}
	}
	var rep benchReport
	if cfg.Refs {
		cfg.Batch = 0
		rep = runRefBench(c.Context, cl, cfg)
	} else {
		fast, err := benchSingles(c, cfg)
		if err != nil {
			return usageError{err}
		}
		rep = runBenchPhases(c.Context, benchClients{cl, fast}, cfg)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	printBench(c.App.Writer, rep)
	for _, p := range rep.Phases {
		if p.Errors > 0 {
			return fmt.Errorf("bench: %d %s errors, first: %s", p.Errors, p.Phase, p.FirstErr)
		}
	}
	return nil
}

// benchClients are the bench's clients: fast, when set, carries the
// single-object requests through the endpoint; cl everything else.
type benchClients struct {
	cl   *client.Client
	fast *benchHTTP
}

// benchSingles returns the fasthttp client for single-object requests
// through the endpoint, or nil when the run uses batches or the
// ring-aware client.
func benchSingles(c *ucli.Context, cfg benchConfig) (*benchHTTP, error) {
	if cfg.RingAware || cfg.Batch > 0 {
		return nil, nil
	}
	t, err := clientTLS(c)
	if err != nil {
		return nil, err
	}
	return newBenchHTTP(c.String("endpoint"), c.String("token"), t, cfg.Level, cfg.Concurrency)
}

// runBenchPhases writes cfg.Objects objects, then reads them back in a
// random order, verifying every byte.
func runBenchPhases(ctx context.Context, cls benchClients, cfg benchConfig) benchReport {
	cl := cls.cl
	oids := make([]api.OID, cfg.Objects)
	for i := range oids {
		oids[i], _ = api.Digest(api.SHA256, benchObject(cfg, i))
	}
	order := rand.New(rand.NewPCG(cfg.Seed, 2)).Perm(cfg.Objects)
	unit := max(cfg.Batch, 1)
	put := runPhase(ctx, "put", cfg, func(first int) (int, int, error) {
		if cls.fast != nil {
			data := benchObject(cfg, first)
			return 1, len(data), cls.fast.put(oids[first], data)
		}
		if cfg.Batch == 0 {
			data := benchObject(cfg, first)
			_, err := cl.Put(ctx, oids[first], bytes.NewReader(data), int64(len(data)), cfg.Level)
			return 1, len(data), err
		}
		return benchPutBatch(ctx, cl, cfg, oids, first, unit)
	})
	get := runPhase(ctx, "get", cfg, func(k int) (int, int, error) {
		if cls.fast != nil {
			n, err := cls.fast.get(oids[order[k]])
			return 1, n, err
		}
		if cfg.Batch == 0 {
			return benchGetOne(ctx, cl, cfg, oids[order[k]])
		}
		return benchGetBatch(ctx, cl, cfg, oids, order[k:min(k+unit, cfg.Objects)])
	})
	return benchReport{Config: cfg, Phases: []phaseReport{put, get}}
}

func benchGetOne(ctx context.Context, cl *client.Client, cfg benchConfig, oid api.OID) (int, int, error) {
	body, _, err := cl.Get(ctx, oid, cfg.Level)
	if err != nil {
		return 1, 0, err
	}
	defer body.Close()
	n, err := io.Copy(io.Discard, body) // the client verifies against the OID at EOF
	return 1, int(n), err
}

func benchPutBatch(ctx context.Context, cl *client.Client, cfg benchConfig, oids []api.OID, first, unit int) (int, int, error) {
	var objs []client.Object
	size := 0
	for i := first; i < min(first+unit, cfg.Objects); i++ {
		data := benchObject(cfg, i)
		objs, size = append(objs, client.Object{OID: oids[i], Data: data}), size+len(data)
	}
	reply, err := cl.PutBatch(ctx, objs, cfg.Level)
	if err == nil && reply.Failed > 0 {
		err = fmt.Errorf("%d of %d objects failed", reply.Failed, len(objs))
	}
	return len(objs), size, err
}

func benchGetBatch(ctx context.Context, cl *client.Client, cfg benchConfig, oids []api.OID, idx []int) (int, int, error) {
	want := make([]api.OID, len(idx))
	for j, i := range idx {
		want[j] = oids[i]
	}
	size := 0
	var first error
	err := cl.GetMany(ctx, want, cfg.Level, func(_ api.OID, data []byte, err error) {
		size += len(data)
		if err != nil && first == nil {
			first = err
		}
	})
	if err == nil {
		err = first
	}
	return len(idx), size, err
}

// runPhase runs op over the indexes 0, unit, 2*unit, ... below cfg.Objects
// on cfg.Concurrency workers; op handles the objects from its index on and
// reports how many objects and bytes it moved. Latencies are per request.
func runPhase(ctx context.Context, name string, cfg benchConfig, op func(first int) (objects, bytes int, err error)) phaseReport {
	unit := max(cfg.Batch, 1)
	var next, moved, bytes atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	rep := phaseReport{Phase: name}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				first := int(next.Add(int64(unit))) - unit
				if first >= cfg.Objects {
					break
				}
				t0 := time.Now()
				objs, n, err := op(first)
				mine = append(mine, time.Since(t0))
				moved.Add(int64(objs))
				bytes.Add(int64(n))
				if err != nil {
					mu.Lock()
					if rep.Errors++; rep.FirstErr == "" {
						rep.FirstErr = err.Error()
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	rep.Ops = int(moved.Load())
	rep.OpsPerSec = float64(rep.Ops) / rep.Seconds
	rep.MBPerSec = float64(bytes.Load()) / rep.Seconds / 1e6
	slices.Sort(lat)
	rep.P50ms, rep.P90ms, rep.P99ms, rep.P999ms = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), pct(lat, 0.999)
	return rep
}

// pct is the q-quantile of sorted durations, in milliseconds (nearest rank).
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.999999)
	i = min(max(i, 1), len(sorted)) - 1
	return float64(sorted[i]) / float64(time.Millisecond)
}

// gitMix approximates the sizes of objects in Git repositories: many small
// trees, commits and blobs, a long tail of larger blobs. Each bucket is
// (share in percent, smallest size, largest size).
var gitMix = [][3]int{{30, 100, 1 << 10}, {35, 1 << 10, 4 << 10}, {20, 4 << 10, 16 << 10}, {12, 16 << 10, 64 << 10}, {3, 64 << 10, 512 << 10}}

// benchObject returns object i's bytes: unique, deterministic from the seed.
func benchObject(cfg benchConfig, i int) []byte {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
	size := cfg.Size
	if cfg.GitMix {
		p := r.IntN(100)
		for _, b := range gitMix {
			if p -= b[0]; p < 0 {
				size = b[1] + r.IntN(b[2]-b[1])
				break
			}
		}
	}
	data := make([]byte, size+8)
	binary.LittleEndian.PutUint64(data, uint64(i)) // unique even when size is 0
	for j := 8; j+8 <= len(data); j += 8 {
		binary.LittleEndian.PutUint64(data[j:], r.Uint64())
	}
	return data[:max(size, 8)]
}

func printBench(w io.Writer, rep benchReport) {
	c := rep.Config
	mode := "through " + "the endpoint"
	if c.RingAware {
		mode = "ring-aware"
	}
	if c.Batch > 0 {
		mode += fmt.Sprintf(", batches of %d (latencies per batch)", c.Batch)
	}
	if c.Refs {
		fmt.Fprintf(w, "%d refs in %d repositories, concurrency %d, one ref per transaction, %s\n", c.Objects, refBenchRepos, c.Concurrency, mode)
	} else {
		fmt.Fprintf(w, "%d objects, size %s, concurrency %d, consistency %s, %s\n", c.Objects, sizeLabel(c), c.Concurrency, c.Level, mode)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tobjects\terrors\tobjects/s\tMB/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\t")
	for _, p := range rep.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", p.Phase, p.Ops, p.Errors, p.OpsPerSec, p.MBPerSec, p.P50ms, p.P90ms, p.P99ms, p.P999ms)
	}
	tw.Flush()
}

func sizeLabel(c benchConfig) string {
	if c.GitMix {
		return "git-mix"
	}
	return fmt.Sprintf("%d B", c.Size)
}

// refBenchRepos spreads the ref benchmark over this many repositories, so
// over many partitions (each partition serialises its transactions).
const refBenchRepos = 64

// runRefBench creates cfg.Objects refs (one transaction each), moves each
// with a compare-and-swap, then reads each back and checks its value.
func runRefBench(ctx context.Context, cl *client.Client, cfg benchConfig) benchReport {
	repo := func(i int) string { return fmt.Sprintf("bench/s%d/r%d", cfg.Seed, i%refBenchRepos) }
	name := func(i int) string { return fmt.Sprintf("refs/heads/b%d", i) }
	val := func(i, gen int) string { return fmt.Sprintf("%08x%032x", gen, i+1) }
	txn := func(i int, old, new string) error {
		_, err := cl.RefTxn(ctx, repo(i), api.RefTxn{Updates: []api.RefUpdate{{Name: name(i), Old: old, New: new}}}, false)
		return err
	}
	create := runPhase(ctx, "ref-create", cfg, func(i int) (int, int, error) { return 1, 0, txn(i, api.ZeroOID, val(i, 1)) })
	cas := runPhase(ctx, "ref-cas", cfg, func(i int) (int, int, error) { return 1, 0, txn(i, val(i, 1), val(i, 2)) })
	get := runPhase(ctx, "ref-get", cfg, func(i int) (int, int, error) {
		got, err := cl.GetRef(ctx, repo(i), name(i))
		if err == nil && got != val(i, 2) {
			err = fmt.Errorf("%s %s is %s; want %s", repo(i), name(i), got, val(i, 2))
		}
		return 1, 0, err
	})
	return benchReport{Config: cfg, Phases: []phaseReport{create, cas, get}}
}
