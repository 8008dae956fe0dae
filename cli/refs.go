package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

func refCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "ref",
		Usage: "read and update a repository's refs (docs/refs.md)",
		Subcommands: []*ucli.Command{
			{
				Name:      "list",
				Usage:     "list a repository's refs",
				ArgsUsage: "REPO",
				Flags: []ucli.Flag{jsonFlag(),
					&ucli.StringFlag{Name: "prefix", Usage: "only refs whose names start with this (e.g. refs/heads/)"}},
				Action: refList,
			},
			{
				Name:      "get",
				Usage:     "print the OID a ref points at",
				ArgsUsage: "REPO REF",
				Action:    refGet,
			},
			{
				Name:      "update",
				Usage:     "set REF to NEW if it still has the expected old value (all zeros as NEW deletes it)",
				ArgsUsage: "REPO REF NEW",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "old", Usage: "expected current OID; all zeros: the ref must not exist (default: the value read just before, so a concurrent change still conflicts)"},
					&ucli.BoolFlag{Name: "no-require-objects", Usage: "do not require NEW to be stored at quorum"},
				},
				Action: refUpdate,
			},
		},
	}
}

func refList(c *ucli.Context) error {
	if c.NArg() != 1 {
		return usagef("ref list takes one argument, the repository; flags go before it")
	}
	cl, err := plainClient(c)
	if err != nil {
		return err
	}
	var all []api.Ref
	after := ""
	for {
		page, err := cl.ListRefs(c.Context, c.Args().First(), c.String("prefix"), after, 0)
		if err != nil {
			return err
		}
		all = append(all, page.Refs...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, api.RefList{Repo: c.Args().First(), Refs: all})
	}
	for _, r := range all {
		fmt.Fprintf(c.App.Writer, "%s %s\n", r.OID, r.Name)
	}
	return nil
}

func refGet(c *ucli.Context) error {
	if c.NArg() != 2 {
		return usagef("ref get takes two arguments, REPO and REF")
	}
	cl, err := plainClient(c)
	if err != nil {
		return err
	}
	oid, err := cl.GetRef(c.Context, c.Args().Get(0), c.Args().Get(1))
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, oid)
	return nil
}

func refUpdate(c *ucli.Context) error {
	if c.NArg() != 3 {
		return usagef("ref update takes three arguments, REPO REF NEW; flags go before them")
	}
	repo, ref, next := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
	cl, err := plainClient(c)
	if err != nil {
		return err
	}
	old := c.String("old")
	if !c.IsSet("old") {
		cur, err := cl.GetRef(c.Context, repo, ref)
		switch {
		case errors.Is(err, api.ErrNotFound):
			old = api.ZeroOID
		case err != nil:
			return err
		default:
			old = cur
		}
	}
	t := api.RefTxn{Updates: []api.RefUpdate{{Name: ref, Old: old, New: next}}}
	res, err := cl.RefTxn(c.Context, repo, t, !c.Bool("no-require-objects"))
	var ce *client.ConflictError
	if errors.As(err, &ce) && len(ce.Refs) == 1 {
		return fmt.Errorf("%s is %s, not the expected %s: nothing changed", ref, ce.Refs[0].OID, old)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: %s -> %s (partition %d, epoch %d)\n", ref, old, res.Refs[0].OID, res.Partition, res.Epoch)
	return nil
}

func partitionsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "partitions",
		Usage: "ref partition assignments (docs/refs.md)",
		Subcommands: []*ucli.Command{
			{
				Name:   "status",
				Usage:  "show each partition's primary, epoch, members, and how far each member lags",
				Flags:  []ucli.Flag{jsonFlag()},
				Action: partitionsStatus,
			},
			{
				Name:   "plan",
				Usage:  "show what the planner would change now (nothing is applied)",
				Flags:  []ucli.Flag{jsonFlag()},
				Action: partitionsPlan,
			},
		},
	}
}

// partitionRow is one partition in `partitions status`: the newest record
// any node reported, and each member's version as that member reported it.
type partitionRow struct {
	api.Partition
	Serving  bool              `json:"serving"`
	Versions map[string]uint64 `json:"seq_by_node"`
	Lag      map[string]uint64 `json:"lag_by_node"`
}

func partitionsStatus(c *ucli.Context) error {
	cl, err := plainClient(c)
	if err != nil {
		return err
	}
	doc, err := cl.Cluster(c.Context)
	if err != nil {
		return err
	}
	rows := map[int]*partitionRow{}
	for _, n := range doc.Nodes {
		nc, err := newClient(c, client.Config{Endpoint: nodeURL(c, n.Addr)})
		if err != nil {
			continue
		}
		rep, err := nc.Partitions(c.Context)
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "stratum: %s did not answer: %v\n", n.ID, oneLine(err.Error()))
			continue
		}
		mergePartitions(rows, n.ID, rep)
	}
	out := make([]*partitionRow, 0, len(rows))
	for _, r := range rows {
		r.Lag = map[string]uint64{}
		for _, m := range r.Replicas {
			if top, own := r.Versions[r.Primary], r.Versions[m]; top > own {
				r.Lag[m] = top - own
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"partitions": out})
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tPRIMARY\tEPOCH\tSERVING\tREPLICAS\tIN SYNC\tLAG")
	for _, r := range out {
		var lag []string
		for _, m := range r.Replicas {
			if !r.IsInSync(m) {
				lag = append(lag, m+":catching-up")
			} else if l := r.Lag[m]; l > 0 {
				lag = append(lag, fmt.Sprintf("%s:%d", m, l))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%t\t%s\t%s\t%s\n", r.ID, r.Primary, r.Epoch, r.Serving,
			strings.Join(r.Replicas, ","), strings.Join(r.InSync, ","), strings.Join(lag, " "))
	}
	return tw.Flush()
}

func mergePartitions(rows map[int]*partitionRow, node string, rep api.PartitionReport) {
	for _, p := range rep.Partitions {
		r := rows[p.ID]
		if r == nil {
			r = &partitionRow{Versions: map[string]uint64{}}
			rows[p.ID] = r
		}
		if p.Epoch > r.Epoch {
			r.Partition = p.Partition
		}
		if p.Has(node) {
			r.Versions[node] = p.Version.Seq
		}
		r.Serving = r.Serving || p.Serving
	}
}

func partitionsPlan(c *ucli.Context) error {
	cl, err := plainClient(c)
	if err != nil {
		return err
	}
	actions, err := cl.PartitionPlan(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"actions": actions})
	}
	if len(actions) == 0 {
		fmt.Fprintln(c.App.Writer, "nothing to do: every partition is complete and balanced")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tACTION\tNODE\tFROM\tREASON")
	for _, a := range actions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", a.Partition, a.Kind, a.Node, a.From, a.Reason)
	}
	return tw.Flush()
}
