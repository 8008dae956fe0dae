package uploadpack

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/datanode/git/backend"
	"github.com/stratum-store/stratum/datanode/git/internal/gittest"
)

// TestEmptyRepository clones a repository with no refs: git warns that it
// is empty and succeeds.
func TestEmptyRepository(t *testing.T) {
	srv := server(t, backend.NewMemory())
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			dir := t.TempDir()
			_, e, err := gitIn(t, dir, nil, "-c", "protocol.version="+proto, "clone", srv.URL+"/none.git", "c")
			if err != nil || !strings.Contains(e, "You appear to have cloned an empty repository") {
				t.Fatalf("clone of an empty repository: %v\n%s; want success and git's warning", err, e)
			}
			if out := mustGit(t, filepath.Join(dir, "c"), "for-each-ref"); out != "" {
				t.Fatalf("refs of the empty clone: got %q; want none", out)
			}
		})
	}
}

// TestWants: a commit reachable from a ref may be fetched by ID; an
// unknown object, and a commit or blob the store holds for another
// repository, are refused with git's "not our ref" error, which git prints.
func TestWants(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 10, 0)
	other := gittest.New(t, true)
	generate(t, other, "secret", "", 500, 3, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	load(t, m, "other", other)
	srv := server(t, m)
	ancestor := src.Line(nil, "rev-parse", "main~3")
	secret := other.Line(nil, "rev-parse", "secret")
	secretBlob := other.Line(nil, "rev-parse", "secret:d0/f0")
	unknown := strings.Repeat("ab", 20)
	for _, proto := range []string{"2", "0"} {
		t.Run("v"+proto, func(t *testing.T) {
			dir := t.TempDir()
			mustGit(t, dir, "init", "-q", "--bare", "c")
			c := filepath.Join(dir, "c")
			fetch := func(oid string) (string, error) {
				_, e, err := gitIn(t, c, nil, "-c", "protocol.version="+proto, "fetch", srv.URL+"/r", oid)
				return e, err
			}
			if e, err := fetch(ancestor); err != nil {
				t.Fatalf("fetch of a commit reachable from main: %v\n%s", err, e)
			}
			mustGit(t, c, "cat-file", "-e", ancestor)
			for _, oid := range []string{unknown, secret, secretBlob} {
				e, err := fetch(oid)
				if err == nil || !strings.Contains(e, "remote error: upload-pack: not our ref "+oid) {
					t.Fatalf("fetch of %s: got %v\n%s; want git's \"not our ref\" error", oid, err, e)
				}
			}
			if _, _, err := gitIn(t, c, nil, "cat-file", "-e", secret); err == nil {
				t.Fatalf("the other repository's commit reached the clone")
			}
		})
	}
}

// hiding is a Backend that has lost some objects (a fake of the small
// interface: the test is about what upload-pack does then).
type hiding struct {
	backend.Backend
	lost map[string]bool
}

func (h hiding) Get(ctx context.Context, oids []api.OID, fn func(api.OID, []byte, error)) error {
	return h.Backend.Get(ctx, oids, func(oid api.OID, data []byte, err error) {
		if h.lost[oid.String()] {
			data, err = nil, backend.ErrNotFound
		}
		fn(oid, data, err)
	})
}

// TestMissingObject: an object of the history missing from the store
// fails the clone with a message naming it, whether the walk (a tree) or
// the pack writer (a blob) finds it missing, and never leaves a clone
// that passes for complete.
func TestMissingObject(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 10, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	lost := map[string]string{
		"tree": src.Line(nil, "rev-parse", "main~4:d1"),
		"blob": src.Line(nil, "rev-parse", "main~2:d2/f4"),
	}
	for what, oid := range lost {
		srv := server(t, hiding{m, map[string]bool{oid: true}})
		for _, proto := range []string{"2", "0"} {
			t.Run(what+"/v"+proto, func(t *testing.T) {
				dir := t.TempDir()
				_, e, err := gitIn(t, dir, nil, "-c", "protocol.version="+proto, "clone", "--bare", srv.URL+"/r", "c")
				t.Logf("git says: %s", strings.TrimSpace(e))
				if err == nil || !strings.Contains(e, "object "+oid+" is missing from the store") {
					t.Fatalf("clone with %s %s lost: got %v\n%s; want an error naming it", what, oid, err, e)
				}
			})
		}
	}
}

// TestServeErrors feeds malformed requests to Serve: each gets an ERR
// packet with a clear reason and an error wrapping ErrProtocol.
func TestServeErrors(t *testing.T) {
	src := gittest.New(t, true)
	generate(t, src, "main", "", 0, 2, 0)
	m := backend.NewMemory()
	load(t, m, "r", src)
	tip := src.Line(nil, "rev-parse", "main")
	f := func(v2 bool, lines []string, want string) {
		t.Helper()
		var out strings.Builder
		err := Serve(context.Background(), strings.NewReader(pkts(lines...)), &out, m, "r", v2)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(out.String(), "ERR "+want) {
			t.Fatalf("request %q: got %v, response %q; want ErrProtocol and ERR %q", lines, err, out.String(), want)
		}
	}
	f(false, []string{"wont " + tip, ""}, "upload-pack: protocol error, expected to get object ID, not 'wont "+tip+"'")
	f(false, []string{"want 1234", ""}, `upload-pack: expected an object ID after "want", got "1234"`)
	f(false, []string{"want " + tip, "deepen 0", ""}, `upload-pack: invalid deepen: "deepen 0"`)
	f(false, []string{"want " + tip, "deepen 1", "deepen-since 5", ""}, "upload-pack: deepen and deepen-since (or deepen-not) cannot be used together")
	f(false, []string{"want " + tip, "", "hove " + tip, "done"}, "upload-pack: expected SHA1 list, got 'hove "+tip+"'")
	f(true, []string{"command=push", "\x01", ""}, `upload-pack: unknown command "push"`)
	f(true, []string{"command=fetch", "object-format=sha256", "\x01", ""}, `upload-pack: object-format "sha256" is not supported (sha1 only)`)
	f(true, []string{"command=fetch", "\x01", "want " + tip, "filter tree:0", ""}, `upload-pack: filter "tree:0" is not supported (only blob:none)`)
	f(true, []string{"command=fetch", "\x01", "want " + tip, "sideband-all", ""}, "upload-pack: unexpected line: 'sideband-all'")
	f(true, []string{"command=fetch", "\x01", "want " + tip, "deepen-not nosuchref", "done", ""}, "upload-pack: ambiguous deepen-not: nosuchref")
	f(true, []string{"command=ls-refs", "\x01", "peel", "symref", ""}, "upload-pack: unexpected line: 'symref'")
}

// pkts frames lines as pkt-lines: "" is a flush, "\x01" a delim, anything
// else a data packet with a newline.
func pkts(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		switch l {
		case "":
			b.WriteString("0000")
		case "\x01":
			b.WriteString("0001")
		default:
			p, _ := pktlineData(l + "\n")
			b.WriteString(p)
		}
	}
	return b.String()
}
