package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

func jsonFlag() ucli.Flag { return &ucli.BoolFlag{Name: "json", Usage: "print the raw JSON document"} }

func clusterCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "cluster",
		Usage: "cluster-wide commands",
		Subcommands: []*ucli.Command{{
			Name:  "status",
			Usage: "show every node, whether it is live, and the ring revision",
			Flags: []ucli.Flag{jsonFlag(), &ucli.DurationFlag{Name: "watch", Usage: "redraw every this often (e.g. 2s) until interrupted"}},
			Action: func(c *ucli.Context) error {
				cl, err := plainClient(c)
				if err != nil {
					return err
				}
				every := c.Duration("watch")
				for {
					if every > 0 {
						fmt.Fprint(c.App.Writer, "\x1b[H\x1b[2J") // clear the terminal
					}
					if err := printCluster(c, cl); err != nil || every <= 0 {
						return err
					}
					select {
					case <-c.Context.Done():
						return nil
					case <-time.After(every):
					}
				}
			},
		}},
	}
}

func printCluster(c *ucli.Context, cl *client.Client) error {
	doc, err := cl.Cluster(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, doc)
	}
	fmt.Fprintf(c.App.Writer, "ring revision %d, replication factor %d, control plane %s, seen by %s\n",
		doc.RingRevision, doc.ReplicationFactor, doc.ControlPlane, doc.Coordinator)
	if err := printNodes(c, doc.Nodes); err != nil {
		return err
	}
	printNodeData(c, doc.Nodes)
	for _, b := range doc.Breakers {
		if b.State != "closed" {
			fmt.Fprintf(c.App.Writer, "peer %s: circuit %s after %d failures\n", b.Peer, b.State, b.Failures)
		}
	}
	return nil
}

func ringCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "ring",
		Usage: "ring commands",
		Subcommands: []*ucli.Command{{
			Name:  "show",
			Usage: "show the ring the endpoint uses",
			Flags: []ucli.Flag{jsonFlag()},
			Action: func(c *ucli.Context) error {
				cl, err := plainClient(c)
				if err != nil {
					return err
				}
				doc, err := cl.Ring(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, doc)
				}
				fmt.Fprintf(c.App.Writer, "revision %d, replication factor %d, %d vnodes per node\n", doc.Revision, doc.ReplicationFactor, doc.VNodes)
				tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tADDRESS\tZONE")
				for _, n := range doc.Nodes {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, n.Addr, n.Zone)
				}
				return tw.Flush()
			},
		}},
	}
}

func plainClient(c *ucli.Context) (*client.Client, error) {
	return newClient(c, client.Config{Endpoint: c.String("endpoint")})
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printNodeData asks each node for its status and prints what it stores
// and how its repair is going; a node that does not answer says so.
func printNodeData(c *ucli.Context, nodes []api.NodeStatus) {
	fmt.Fprintln(c.App.Writer)
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOBJECTS\tBYTES\tHINTS\tREPAIR\tLAST ANTI-ENTROPY\tLAST SCRUB\tDOWNTIME")
	for _, n := range nodes {
		nc, err := newClient(c, client.Config{Endpoint: nodeURL(c, n.Addr), Timeout: 3 * time.Second})
		var st api.StatusDoc
		if err == nil {
			st, err = nc.Status(c.Context)
		}
		if err != nil {
			fmt.Fprintf(tw, "%s\tunreachable\t\t\t\t\t\t\n", n.ID)
			continue
		}
		p := st.Repair
		repair := bar(p.Copied, p.Found, 10)
		if p.Paused {
			repair += " PAUSED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.0fs\n", n.ID, st.Objects, st.Bytes, st.HintsPending, repair,
			ago(st.AELastRound), ago(st.LastScrub), st.DowntimeSeconds)
	}
	tw.Flush()
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}
