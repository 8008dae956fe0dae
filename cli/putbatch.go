package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/api/client"
)

// batchFileLimit is the largest file sent in a batch; larger ones go alone.
const batchFileLimit = 1 << 20

// runPutBatch stores every regular file under --batch DIR, small ones in
// batch requests of --batch-size, large ones one by one, showing progress on
// stderr. It prints "<oid> <path>" per stored file and fails if any failed.
func runPutBatch(c *ucli.Context) error {
	if c.NArg() != 0 {
		return usagef("put --batch DIR takes no other argument")
	}
	cl, level, err := clientFor(c)
	if err != nil {
		return err
	}
	files, err := listFiles(c.String("batch"))
	if err != nil {
		return err
	}
	algo := api.SHA256
	if c.Bool("sha1") {
		algo = api.SHA1
	}
	p := newProgress(c.App.ErrWriter, len(files))
	failed := 0
	for start := 0; start < len(files); start += c.Int("batch-size") {
		chunk := files[start:min(start+c.Int("batch-size"), len(files))]
		n, err := putChunk(c, cl, chunk, algo, level)
		if err != nil {
			return err
		}
		failed += n
		p.add(len(chunk))
	}
	p.done()
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not stored", failed, len(files))
	}
	return nil
}

func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

// putChunk stores one chunk of files and returns how many failed.
func putChunk(c *ucli.Context, cl *client.Client, paths []string, algo api.Algorithm, level api.Consistency) (int, error) {
	var objs []client.Object
	var names []string
	failed := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		oid, err := api.Digest(algo, data)
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", path, err)
			failed++
			continue
		}
		if len(data) > batchFileLimit {
			if _, err := cl.Put(c.Context, oid, strings.NewReader(string(data)), int64(len(data)), level); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", path, err)
				failed++
				continue
			}
			fmt.Fprintf(c.App.Writer, "%s %s\n", oid, path)
			continue
		}
		objs, names = append(objs, client.Object{OID: oid, Data: data}), append(names, path)
	}
	if len(objs) == 0 {
		return failed, nil
	}
	reply, err := cl.PutBatch(c.Context, objs, level)
	if err != nil {
		return 0, err
	}
	for i, it := range reply.Items {
		if it.Error != nil {
			fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", names[i], it.Error.Message)
			failed++
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s %s\n", it.OID, names[i])
	}
	return failed, nil
}

// progress draws "[#####     ] 512/1024 files, 850/s" on one line of w.
type progress struct {
	w     io.Writer
	total int
	n     int
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, start: time.Now()}
}

func (p *progress) add(k int) {
	p.n += k
	const width = 30
	filled := width
	if p.total > 0 {
		filled = width * p.n / p.total
	}
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d files, %.0f/s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), p.n, p.total, rate)
}

func (p *progress) done() {
	if p.total > 0 {
		fmt.Fprintln(p.w)
	}
}
