package controlplane

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratum-store/stratum/api"
	"github.com/stratum-store/stratum/ring"
)

// keyLayout is every key the control plane writes, relative to
// ClientConfig.Prefix: a path ending in "/" is a family (one key per node,
// token, partition, election candidate), any other a single key. doc.go's
// "Key layout" section and docs/architecture.md's table list exactly these.
var keyLayout = []string{
	"ring",
	"nodes/",
	"members/",
	"joins/",
	"detector/",
	"partitions/config",
	"partitions/p/",
	"tokens/",
	"cluster-secret",
	"repair/paused",
}

// layoutEntry is the keyLayout entry rel falls under, "" if none. A
// family's root without the slash ("members", the prefix a list or an
// election starts from) counts as that family.
func layoutEntry(rel string) string {
	for _, e := range keyLayout {
		if rel == e || (strings.HasSuffix(e, "/") && (strings.HasPrefix(rel, e) || rel+"/" == e)) {
			return e
		}
	}
	return ""
}

// documentedKeys returns the keys a doc lists: each match of re's first
// group, with a trailing placeholder ("<id>", "<lease>") cut to the family.
func documentedKeys(t *testing.T, text string, re *regexp.Regexp) []string {
	t.Helper()
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		k := m[1]
		if i := strings.Index(k, "<"); i >= 0 {
			k = k[:i]
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// section is the text of doc from the line holding start to the next line
// starting with next.
func section(t *testing.T, doc, start, next string) string {
	t.Helper()
	i := strings.Index(doc, start)
	if i < 0 {
		t.Fatalf("got no %q section; want one", start)
	}
	rest := doc[i+len(start):]
	if j := strings.Index(rest, next); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// builtKeys parses this package's non-test sources and returns every key
// path passed to a key(...) call, string literals joined with "/" and
// anything computed written "<x>", with the file and line of the call.
func builtKeys(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && isKeyCall(call) {
				out[keyPath(call.Args)] = fset.Position(call.Pos()).String()
			}
			return true
		})
	}
	return out
}

func isKeyCall(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "key"
}

// keyPath joins key's arguments with "/": string literals as they are,
// anything computed as "<x>".
func keyPath(args []ast.Expr) string {
	var parts []string
	for _, a := range args {
		part := "<x>"
		if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				part = s
			}
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "/")
}

// TestKeyLayoutDocumented keeps the key layout honest three ways: doc.go
// and docs/architecture.md list exactly keyLayout; every key path the
// code builds with Client.key falls under an entry; and every key a
// control plane that has done everything (registration, joins, the
// detector and its election, the planner, tokens, the cluster secret, a
// repair pause) leaves in etcd falls under an entry, each entry seen.
func TestKeyLayoutDocumented(t *testing.T) {
	want := slices.Sorted(slices.Values(keyLayout))
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	inDoc := documentedKeys(t, section(t, string(doc), "// # Key layout", "// # "), regexp.MustCompile(`(?m)^//\t<prefix>(\S+)`))
	if !slices.Equal(inDoc, want) {
		t.Errorf("doc.go's key layout lists %v; want %v (keyLayout)", inDoc, want)
	}
	arch, err := os.ReadFile("../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	inArch := documentedKeys(t, section(t, string(arch), "## etcd key layout", "\n## "), regexp.MustCompile("(?m)^\\| `/stratum/([^`]+)`"))
	if !slices.Equal(inArch, want) {
		t.Errorf("docs/architecture.md's key layout lists %v; want %v (keyLayout)", inArch, want)
	}

	built := builtKeys(t)
	used := map[string]bool{}
	for path, pos := range built {
		e := layoutEntry(path)
		if e == "" {
			t.Errorf("%s: the code builds key <prefix>%s; want it under one of %v (add it to keyLayout, doc.go and docs/architecture.md)", pos, path, keyLayout)
		}
		used[e] = true
	}
	for _, e := range keyLayout {
		if !used[e] {
			t.Errorf("keyLayout lists %q; want the code to build it (got key builders %v)", e, built)
		}
	}

	seen := map[string]bool{}
	for _, k := range liveKeys(t) {
		e := layoutEntry(k)
		if e == "" {
			t.Errorf("etcd holds <prefix>%s; want it under one of %v", k, keyLayout)
		}
		seen[e] = true
	}
	for _, e := range keyLayout {
		if !seen[e] {
			t.Errorf("the running control plane left no key under <prefix>%s; want every entry exercised", e)
		}
	}
}

// liveKeys runs a control plane through everything that writes a key and
// returns the keys under the prefix, relative to it.
func liveKeys(t *testing.T) []string {
	t.Helper()
	c := mustEtcd(t)
	ctx := ctxT(t)
	cfg := ring.Config{Replicas: 1, VNodes: ring.DefaultVNodes}
	if err := c.JoinRing(ctx, ring.Node{ID: "n1", Addr: "a:1"}, cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []ring.Node{{ID: "n1", Addr: "a:1"}, {ID: "n2", Addr: "a:2"}} {
		l, err := c.Register(ctx, n, "g-"+n.ID, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(ctx) })
		if err := c.MarkActive(ctx, n.ID, "g-"+n.ID); err != nil {
			t.Fatal(err)
		}
	}
	dcfg := testDetectorConfig("leader")
	dcfg.Planner = PlannerConfig{Partitions: api.PartitionConfig{Count: 2, Replicas: 1}, Interval: 50 * time.Millisecond}
	runDetector(t, c, dcfg)
	if err := c.requestJoin(ctx, ring.Node{ID: "n2", Addr: "a:2"}, cfg); err != nil {
		t.Fatal(err)
	}
	tok, _, err := api.NewToken("ops", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRepairPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the planner created both partitions", func() bool {
		parts, err := c.Partitions(ctx)
		return err == nil && len(parts) == 2
	})
	eventually(t, "the detector leader created the cluster secret", func() bool {
		resp, err := c.etcd.Get(ctx, c.key("cluster-secret"))
		return err == nil && len(resp.Kvs) == 1
	})
	resp, err := c.etcd.Get(ctx, c.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), c.cfg.Prefix))
	}
	t.Logf("keys in etcd: %v", out)
	return out
}
