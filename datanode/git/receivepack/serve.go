package receivepack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/clonepack"
	"github.com/stratum-store/stratum/datanode/git/pack"
	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// Statuses of `ng <ref> <reason>`, in Git's words where Git has them, so
// that git prints what users already know.
const (
	statusOK            = "ok"
	statusUnpackError   = "unpacker error"
	statusMissing       = "missing necessary objects"
	statusStale         = "fetch first"
	statusAtomicFailure = "atomic push failure"
)

// Result describes one push, for the caller's logs and metrics.
type Result struct {
	// Commands are the ref updates, each with its Status as reported.
	Commands []Command
	// PushOptions are the client's `git push -o` values, in order.
	PushOptions []string
	// Atomic is true if the client asked for --atomic; stratum applies
	// every push atomically anyway (see the package doc).
	Atomic bool
	// Unpack is why the pack was refused or could not be stored; nil if it
	// was accepted or there was none (a push of deletes only).
	Unpack error
	// Pack sums up the accepted pack; Stored counts the objects put.
	Pack   pack.Result
	Stored int
	// Missing counts the objects the push needed that were neither in the
	// pack nor stored.
	Missing int
}

// Serve answers one `POST git-receive-pack`: it reads the command list,
// push options and pack from r (the request body, already decoded if it
// was gzip), verifies and stores the pack, applies the ref updates in one
// transaction and writes the report to w. See the package doc for the
// steps and their order. A refused push is not an error: Result says why.
// The error is non-nil only when the exchange itself failed (an invalid
// repo name or Limits, a malformed request, which the client is told in an
// ERR packet, or a failed write). An empty command list (git's probe
// before a large POST) is answered with nothing.
func Serve(ctx context.Context, r io.Reader, w io.Writer, b backend.Backend, repo string, limits Limits) (Result, error) {
	if err := limits.Validate(); err != nil {
		return Result{}, err
	}
	if err := api.ValidateRepo(repo); err != nil {
		err = fmt.Errorf("receivepack: %w", err)
		return Result{}, errors.Join(err, pktline.NewWriter(w).WriteError(err.Error()))
	}
	l := limits.withDefaults()
	br := bufio.NewReaderSize(r, 64<<10)
	q, err := readRequest(pktline.NewReader(br), l)
	if err != nil {
		return Result{}, errors.Join(err, fatal(w, q, err.Error()))
	}
	if len(q.cmds) == 0 {
		return Result{}, nil
	}
	p := &push{b: b, repo: repo, l: l, q: q, res: Result{
		Commands: q.cmds, PushOptions: q.options, Atomic: q.has("atomic"),
	}}
	p.run(ctx, br)
	return p.res, p.report(w)
}

// push is one Serve call's state.
type push struct {
	b        backend.Backend
	repo     string
	l        Limits
	q        request
	res      Result
	progress []string
}

func (p *push) cmds() []Command { return p.res.Commands }

// run goes through the steps of the package doc, setting every command's
// Status.
func (p *push) run(ctx context.Context, body io.Reader) {
	valid := checkCommands(p.cmds())
	var u *unpacked
	var k *keeper
	if p.needsPack() {
		k = newKeeper(p.l, valid, p.cmds())
		defer k.close()
		var err error
		if u, err = unpack(ctx, body, p.b, p.l, valid, k.file()); err != nil {
			p.res.Unpack, p.res.Stored = err, u.stored()
			p.failAll(statusUnpackError)
			drain(body, p.l.MaxPackBytes)
			return
		}
		defer u.close()
		p.res.Pack = u.res
		p.note("received %d objects (%d deltas, %d bases already stored), all checked",
			u.res.Objects, u.res.Deltas, u.res.ExternalBases)
	}
	if !valid {
		p.failAll(statusAtomicFailure)
		return
	}
	k.start(ctx, p, u)
	if !p.connected(ctx, u) || !p.store(ctx, u) {
		return
	}
	if before, ok := p.update(ctx); ok {
		k.publish(ctx, p, before[clonepack.Ref])
	}
}

// needsPack reports whether a pack follows: git sends one unless every
// command is a delete.
func (p *push) needsPack() bool {
	for _, c := range p.cmds() {
		if !c.isDelete() {
			return true
		}
	}
	return false
}

// connected applies the connectivity rule; on failure every ref is refused.
func (p *push) connected(ctx context.Context, u *unpacked) bool {
	var tips []string
	for _, c := range p.cmds() {
		if !c.isDelete() {
			tips = append(tips, c.New)
		}
	}
	n, first, err := missing(ctx, p.b, u, tips, p.l)
	if err != nil {
		p.res.Unpack = err
		p.failAll(statusUnpackError)
		return false
	}
	if n > 0 {
		p.res.Missing = n
		p.note("%d objects are neither in the pack nor stored, e.g. %s", n, first)
		p.failAll(statusMissing)
		return false
	}
	return true
}

// store puts the pack's last objects and waits for all of them; a failure
// is reported as the unpack error, since the pack is then not stored.
func (p *push) store(ctx context.Context, u *unpacked) bool {
	if u == nil {
		return true
	}
	n, err := u.store()
	p.res.Stored = n
	if err != nil {
		p.res.Unpack = err
		p.failAll(statusUnpackError)
		return false
	}
	return true
}

// failAll gives status to every command that has none yet.
func (p *push) failAll(status string) {
	for i := range p.res.Commands {
		if p.res.Commands[i].Status == "" {
			p.res.Commands[i].Status = status
		}
	}
}

// note queues a progress message (sent on band 2 unless quiet).
func (p *push) note(format string, a ...any) {
	p.progress = append(p.progress, fmt.Sprintf(format, a...))
}

// drain reads what is left of a refused request, at most max bytes, so
// that the client, which sends its whole body before reading, gets to read
// the report instead of a broken connection.
func drain(r io.Reader, max int64) {
	io.Copy(io.Discard, io.LimitReader(r, max))
}
