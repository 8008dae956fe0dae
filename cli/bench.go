package cli

import (
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
		Concurrency: c.Int("concurrency"), RingAware: c.Bool("ring"), Level: level, Seed: c.Uint64("seed")}
	if cfg.Objects < 1 || cfg.Concurrency < 1 || (!cfg.GitMix && cfg.Size < 0) {
		return usagef("--objects and --concurrency must be >= 1 and --size >= 0")
	}
	cl, err := client.New(client.Config{Endpoint: c.String("endpoint"), RingAware: cfg.RingAware, Timeout: time.Minute})
	if err != nil {
		return usageError{err}
	}
	rep := runBenchPhases(c.Context, cl, cfg)
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

// runBenchPhases writes cfg.Objects objects, then reads them back in a
// random order, verifying every byte.
func runBenchPhases(ctx context.Context, cl *client.Client, cfg benchConfig) benchReport {
	oids := make([]api.OID, cfg.Objects)
	put := runPhase(ctx, "put", cfg, func(i int) (int, error) {
		data := benchObject(cfg, i)
		rec, err := cl.PutBytes(ctx, data, api.SHA256, cfg.Level)
		if err == nil {
			oids[i] = api.MustParseOID(rec.OID)
		}
		return len(data), err
	}, nil)
	order := rand.New(rand.NewPCG(cfg.Seed, 2)).Perm(cfg.Objects)
	get := runPhase(ctx, "get", cfg, func(i int) (int, error) {
		if oids[i].IsZero() {
			return 0, fmt.Errorf("object %d was not written", i)
		}
		body, _, err := cl.Get(ctx, oids[i], cfg.Level)
		if err != nil {
			return 0, err
		}
		defer body.Close()
		n, err := io.Copy(io.Discard, body) // the client verifies against the OID at EOF
		return int(n), err
	}, order)
	return benchReport{Config: cfg, Phases: []phaseReport{put, get}}
}

// runPhase runs op for every index (in order, or in the given order) on
// cfg.Concurrency workers and summarises latencies.
func runPhase(ctx context.Context, name string, cfg benchConfig, op func(i int) (int, error), order []int) phaseReport {
	var next atomic.Int64
	var bytes atomic.Int64
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
				k := int(next.Add(1)) - 1
				if k >= cfg.Objects {
					break
				}
				i := k
				if order != nil {
					i = order[k]
				}
				t0 := time.Now()
				n, err := op(i)
				mine = append(mine, time.Since(t0))
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
	rep.Ops = len(lat)
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
	fmt.Fprintf(w, "%d objects, size %s, concurrency %d, consistency %s, %s\n", c.Objects, sizeLabel(c), c.Concurrency, c.Level, mode)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tops\terrors\tops/s\tMB/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\t")
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
