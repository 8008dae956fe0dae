package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
	"github.com/stratum-store/stratum/controlplane"
)

func rebalanceCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "rebalance",
		Usage: "repair and rebalance progress, and a cluster-wide pause (docs/repair.md)",
		Subcommands: []*ucli.Command{
			{
				Name:   "status",
				Usage:  "show each node's anti-entropy round: found, copied, rate, ETA, with a progress bar",
				Flags:  []ucli.Flag{jsonFlag()},
				Action: rebalanceStatus,
			},
			{
				Name:   "pause",
				Usage:  "hold anti-entropy, recovery, hint delivery and drains on every node where they are",
				Flags:  etcdClientFlags(),
				Action: func(c *ucli.Context) error { return setPaused(c, true) },
			},
			{
				Name:   "resume",
				Usage:  "let them continue from where they were held",
				Flags:  etcdClientFlags(),
				Action: func(c *ucli.Context) error { return setPaused(c, false) },
			},
		},
	}
}

func setPaused(c *ucli.Context, paused bool) error {
	if c.IsSet("etcd") { // straight to etcd, e.g. with root's credentials (docs/security.md)
		if err := withEtcd(c, func(cp *controlplane.Client) error { return cp.SetRepairPaused(c.Context, paused) }); err != nil {
			return err
		}
	} else {
		cl, err := plainClient(c)
		if err != nil {
			return err
		}
		if err := cl.SetRepairPaused(c.Context, paused); err != nil {
			return err
		}
	}
	word := "resumed"
	if paused {
		word = "paused"
	}
	fmt.Fprintf(c.App.Writer, "repair and rebalancing %s cluster-wide\n", word)
	return nil
}

// nodeProgress is one node's line in `rebalance status`.
type nodeProgress struct {
	Node     string              `json:"node"`
	Progress *api.RepairProgress `json:"progress,omitempty"`
	Error    string              `json:"error,omitempty"`
}

func rebalanceStatus(c *ucli.Context) error {
	cl, err := plainClient(c)
	if err != nil {
		return err
	}
	doc, err := cl.Cluster(c.Context)
	if err != nil {
		return err
	}
	var rows []nodeProgress
	for _, n := range doc.Nodes {
		row := nodeProgress{Node: n.ID}
		nc, err := newClient(c, client.Config{Endpoint: nodeURL(c, n.Addr), Timeout: 5 * time.Second})
		if err == nil {
			var p api.RepairProgress
			if p, err = nc.RepairProgress(c.Context); err == nil {
				row.Progress = &p
			}
		}
		if err != nil {
			row.Error = oneLine(err.Error())
		}
		rows = append(rows, row)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"nodes": rows})
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPROGRESS\tCOPIED/FOUND\tRATE\tETA\tSTATE")
	for _, r := range rows {
		if r.Progress == nil {
			fmt.Fprintf(tw, "%s\t\t\t\t\tunreachable: %s\n", r.Node, r.Error)
			continue
		}
		p := r.Progress
		state := "idle"
		switch {
		case p.Paused:
			state = "PAUSED"
		case p.Running:
			state = "running"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.0f/s\t%s\t%s\n", r.Node, bar(p.Copied, p.Found, 20), p.Copied, p.Found, p.Rate, eta(p), state)
	}
	return tw.Flush()
}

// bar draws done out of total in width cells, e.g. [#####.....] 50%.
func bar(done, total int64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	full := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("#", full), strings.Repeat(".", width-full), 100*frac)
}

func eta(p *api.RepairProgress) string {
	if p.Remaining == 0 || p.Rate == 0 {
		return "-"
	}
	return (time.Duration(p.ETASeconds) * time.Second).String()
}
