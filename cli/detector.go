package cli

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/controlplane"
)

func detectorFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "detector", Value: true, Usage: "campaign to run the failure detector (one leader cluster-wide)"},
		&ucli.DurationFlag{Name: "suspect-timeout", Value: 2 * time.Second, Usage: "silence after which a node is SUSPECT"},
		&ucli.DurationFlag{Name: "down-timeout", Value: 10 * time.Second, Usage: "silence after which a SUSPECT node is DOWN"},
		&ucli.IntFlag{Name: "partitions", Value: api.DefaultPartitionCount, Usage: "ref partitions, fixed when the cluster is created"},
		&ucli.IntFlag{Name: "partition-replicas", Value: api.DefaultPartitionReplicas, Usage: "members per ref partition, fixed when the cluster is created"},
		&ucli.DurationFlag{Name: "plan-interval", Value: time.Second, Usage: "how often the partition planner runs"},
		&ucli.DurationFlag{Name: "promote-wait", Value: 10 * time.Second, Usage: "how long a removed primary's node record must be gone before another takes over (keep above every lease TTL)"},
	}
}

// startDetector runs the failure detector campaign in the background when
// --detector is set; the returned stop function cancels it and waits.
func startDetector(c *ucli.Context, cp *controlplane.Client, candidate string, logger *slog.Logger) (stop func(), err error) {
	if !c.Bool("detector") {
		return func() {}, nil
	}
	cfg := controlplane.DefaultDetectorConfig(candidate)
	cfg.SuspectTimeout = c.Duration("suspect-timeout")
	cfg.DownTimeout = c.Duration("down-timeout")
	cfg.Planner = controlplane.PlannerConfig{
		Partitions: api.PartitionConfig{Count: c.Int("partitions"), Replicas: c.Int("partition-replicas")},
		Interval:   c.Duration("plan-interval"), PromoteWait: c.Duration("promote-wait"),
	}
	if cfg.Planner.Partitions.Count < 1 || cfg.Planner.Partitions.Replicas < 1 {
		return nil, usageError{errors.New("--partitions and --partition-replicas must be >= 1")}
	}
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	ctx, cancel := context.WithCancel(c.Context)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cp.RunDetector(ctx, cfg)
	}()
	return func() { cancel(); wg.Wait() }, nil
}
