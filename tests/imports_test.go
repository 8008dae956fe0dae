package tests

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stratum-store/stratum"

func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

// forbiddenImport states the house import direction (../shared/STYLE.md):
// ring imports nothing of ours and api only api/objid, api/client never reaches the servers,
// controlplane and datanode never import each other, the client or cli.
// The pure planner (controlplane/planner) imports only api, for the records
// it plans, and ring. internal/* packages are leaves shared by the servers
// and the CLI, so they import none of datanode, controlplane or cli.
//
// The object identity (api/objid) and the ref data model (api/refdata)
// are leaves. The storage engine and hinted handoff (datanode/store,
// datanode/hints) import only objid, internal leaves and the engine, and
// the ref store only refdata and internal leaves: not api, the wire contract, which would bring
// net/http into the engine (TestEnginesReachNoHTTP checks the transitive
// closure). The Git gateway (datanode/git/...) may use api/client: it
// reaches the cluster through the public API, as any Git server in front
// of a store would, so every call is authorised like a user's.
func forbiddenImport(from, to string) bool {
	switch {
	case under(from, "ring"), under(from, "api/objid"), under(from, "api/refdata"):
		return true
	case from == "api":
		return to != "api/objid" && to != "api/refdata"
	case under(from, "datanode/store"), under(from, "datanode/hints"):
		return !under(to, "api/objid") && !under(to, "internal") && !under(to, "datanode/store")
	case under(from, "datanode/refstore"):
		return !under(to, "api/refdata") && !under(to, "internal")
	case under(from, "datanode/git") && under(to, "api/client"):
		return false
	case under(from, "controlplane/planner"):
		return to != "api" && to != "ring" && to != "api/objid" && to != "api/refdata"
	case under(from, "internal"):
		return under(to, "datanode") || under(to, "controlplane") || under(to, "cli")
	case under(from, "api/client"):
		return under(to, "controlplane") || under(to, "datanode") || under(to, "cli")
	case under(from, "controlplane"):
		return under(to, "datanode") || under(to, "cli") || under(to, "api/client")
	case mechanism(from) >= 0:
		if m := mechanism(to); m >= 0 && m != mechanism(from) {
			return m > mechanism(from)
		}
		return to == "datanode" || under(to, "controlplane") || under(to, "cli") || under(to, "api/client")
	case leaf(from):
		return to == "datanode" || under(to, "controlplane") || under(to, "cli") || under(to, "api/client")
	case under(from, "datanode"):
		return under(to, "controlplane") || under(to, "cli") || under(to, "api/client")
	}
	return false
}

// leaves are the helper packages split out of the datanode root (issue
// 16.1): each holds one mechanism and imports no datanode root, so the
// root can use them and they can be tested alone. leafHTTP lists those of
// them that are about HTTP; the others import no HTTP package themselves.
var leaves = []string{"datanode/breaker", "datanode/budget", "datanode/connlimit", "datanode/clusterview", "datanode/httpbody", "datanode/inflight", "datanode/nodemetrics", "datanode/payload", "datanode/peer",
	"datanode/requestid", "datanode/series", "datanode/stampclock", "internal/retry"}

var leafHTTP = map[string]bool{"datanode/requestid": true, "datanode/httpbody": true, "datanode/peer": true}

// mechanisms are the packages that each hold one protocol of the data
// node (issue 16.1), in import order: each may import leaves and the
// mechanisms before it, never one after it nor the datanode root, which
// wires them together.
var mechanisms = []string{"datanode/objects", "datanode/refs", "datanode/repair", "datanode/httpapi"}

// mechanism is pkg's place in mechanisms, or -1.
func mechanism(pkg string) int {
	for i, m := range mechanisms {
		if under(pkg, m) {
			return i
		}
	}
	return -1
}

func leaf(pkg string) bool {
	for _, l := range leaves {
		if under(pkg, l) {
			return true
		}
	}
	return false
}

func TestForbiddenImportRules(t *testing.T) {
	f := func(from, to string, want bool) {
		t.Helper()
		if got := forbiddenImport(from, to); got != want {
			t.Fatalf("forbiddenImport(%q, %q) = %t; want %t", from, to, got, want)
		}
	}
	f("ring", "api", true)
	f("api", "ring", true)
	f("api/client", "api", false)
	f("api/client", "datanode", true)
	f("datanode", "controlplane", true)
	f("datanode", "datanode/store", false)
	f("controlplane", "ring", false)
	f("cli", "datanode", false)
	f("controlplane/planner", "api", false)
	f("controlplane/planner", "ring", false)
	f("controlplane/planner", "controlplane", true)
	f("controlplane/planner", "api/client", true)
	f("controlplane/planner", "internal/atomicfile", true)
	f("controlplane", "controlplane/planner", false)
	f("internal/pki", "internal/atomicfile", false)
	f("internal/pki", "api", false)
	f("internal/pki", "controlplane", true)
	f("internal/planted", "datanode", true)
	f("internal/atomicfile", "datanode/store", true)
	f("internal/x", "cli", true)
	f("api/objid", "api", true)
	f("api", "api/objid", false) // api re-exports the identity
	f("api", "ring", true)
	f("datanode/store", "api", true)
	f("datanode/store", "api/objid", false)
	f("datanode/hints", "datanode/store", false)
	f("datanode/hints", "api", true)
	f("datanode/git/backend", "api/client", false)
	f("datanode/refstore", "api", true)
	f("datanode/refstore", "api/refdata", false)
	f("api/refdata", "api/objid", true)
	f("api", "api/refdata", false)
	f("datanode/refs", "api/client", true)
	f("datanode/refs", "datanode", true)
	f("datanode/refs", "datanode/peer", false)
	f("datanode/refs", "datanode/refstore", false)
	f("datanode", "datanode/refs", false)
	f("datanode/objects", "datanode/refs", true) // a mechanism imports only the ones before it
	f("datanode/refs", "datanode/objects", false)
	f("datanode/objects", "datanode", true)
	f("datanode/objects", "datanode/hints", false)
	f("datanode/repair", "datanode/objects", false)
	f("datanode/objects", "datanode/repair", true)
	f("datanode/httpapi", "datanode/repair", false)
	f("datanode/repair", "datanode/httpapi", true)
	f("datanode/httpapi", "datanode", true)
	f("datanode/breaker", "datanode", true)
	f("datanode/stampclock", "datanode/downtime", false)
	f("internal/retry", "datanode", true)
}

// TestLeafPackages fails when a leaf helper package imports the datanode
// root, or an HTTP package without being about HTTP (its own imports: the
// api package some use for wire types still brings net/http along).
func TestLeafPackages(t *testing.T) {
	var pkgs []string
	for _, p := range leaves {
		pkgs = append(pkgs, module+"/"+p)
	}
	args := append([]string{"list", "-f", `{{.ImportPath}}|{{join .Imports " "}}`}, pkgs...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(leaves) {
		t.Fatalf("go list showed %d packages; want %d (%v)", len(lines), len(leaves), leaves)
	}
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, "|")
		pkg = strings.TrimPrefix(pkg, module+"/")
		for _, d := range strings.Fields(imports) {
			if (d == "net/http" || strings.HasPrefix(d, "github.com/valyala/fasthttp")) && !leafHTTP[pkg] {
				t.Errorf("%s imports %s: a leaf helper that is not about HTTP imports no HTTP package", pkg, d)
			}
			if d == module+"/datanode" {
				t.Errorf("%s imports the datanode root: a leaf helper imports no root", pkg)
			}
		}
	}
}

// pure lists the packages that must stay pure functions of their input:
// no I/O, no clock, no logging, no etcd, HTTP or storage engine.
var pure = []string{"ring", "controlplane/planner"}

// forbiddenDep says whether pure package pkg may not depend on dep,
// directly or through any path (go list -deps). ring reaches no network
// package at all. The planner reaches net/http and time only through api,
// whose record types (Partition, Member) it plans, until those move to a
// leaf package (issue 16.2); forbiddenDirect keeps them out of its own code.
func forbiddenDep(pkg, dep string) bool {
	for _, p := range []string{"go.etcd.io/", "google.golang.org/grpc", "github.com/valyala/fasthttp", "github.com/syndtr/goleveldb"} {
		if strings.HasPrefix(dep, p) {
			return true
		}
	}
	if under(pkg, "ring") && (under(dep, "net") || dep == "os/exec") { // fmt brings os itself
		return true
	}
	if rel, ours := strings.CutPrefix(dep, module+"/"); ours {
		return rel != pkg && forbiddenImport(pkg, rel)
	}
	return false
}

// forbiddenDirect says whether pure package pkg may not import dep itself:
// the standard library's I/O, clock, randomness, logging and concurrency.
func forbiddenDirect(pkg, dep string) bool {
	for _, p := range []string{"net", "os", "io", "time", "log", "syscall", "sync", "math/rand", "crypto/rand", "runtime", "unsafe", "plugin"} {
		if under(dep, p) {
			return true
		}
	}
	return forbiddenDep(pkg, dep)
}

func TestForbiddenDepRules(t *testing.T) {
	f := func(rule func(string, string) bool, pkg, dep string, want bool) {
		t.Helper()
		if got := rule(pkg, dep); got != want {
			t.Fatalf("rule(%q, %q) = %t; want %t", pkg, dep, got, want)
		}
	}
	f(forbiddenDep, "ring", "net/http", true)
	f(forbiddenDep, "ring", "os/exec", true)
	f(forbiddenDep, "ring", "os", false) // fmt imports os
	f(forbiddenDep, "ring", "crypto/sha256", false)
	f(forbiddenDep, "ring", module+"/api", true)
	f(forbiddenDep, "controlplane/planner", "go.etcd.io/etcd/client/v3", true)
	f(forbiddenDep, "controlplane/planner", "google.golang.org/grpc", true)
	f(forbiddenDep, "controlplane/planner", "github.com/valyala/fasthttp", true)
	f(forbiddenDep, "controlplane/planner", "github.com/syndtr/goleveldb/leveldb", true)
	f(forbiddenDep, "controlplane/planner", module+"/api", false)
	f(forbiddenDep, "controlplane/planner", module+"/controlplane", true)
	f(forbiddenDep, "controlplane/planner", module+"/controlplane/planner", false)
	f(forbiddenDep, "controlplane/planner", "net/http", false) // through api only
	f(forbiddenDirect, "controlplane/planner", "net/http", true)
	f(forbiddenDirect, "controlplane/planner", "time", true)
	f(forbiddenDirect, "controlplane/planner", "log/slog", true)
	f(forbiddenDirect, "controlplane/planner", "math/rand/v2", true)
	f(forbiddenDirect, "controlplane/planner", "os", true)
	f(forbiddenDirect, "controlplane/planner", "crypto/sha256", false)
	f(forbiddenDirect, "controlplane/planner", "slices", false)
	f(forbiddenDirect, "ring", "encoding/binary", false)
}

// TestPurePackages runs go list over the pure packages and fails on any
// dependency, direct or transitive, they may not have.
func TestPurePackages(t *testing.T) {
	var pkgs []string
	for _, p := range pure {
		pkgs = append(pkgs, module+"/"+p)
	}
	args := append([]string{"list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`}, pkgs...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(pure) {
		t.Fatalf("go list showed %d packages; want %d (%v)", len(lines), len(pure), pure)
	}
	for _, line := range lines {
		fields := strings.Split(line, "|")
		pkg := strings.TrimPrefix(fields[0], module+"/")
		imports, deps := strings.Fields(fields[1]), strings.Fields(fields[2])
		if len(deps) == 0 {
			t.Fatalf("%s: go list showed no dependencies; the check saw nothing", pkg)
		}
		for _, d := range imports {
			if forbiddenDirect(pkg, d) {
				t.Errorf("%s imports %s: a pure package does no I/O, reads no clock and logs nothing", pkg, d)
			}
		}
		for _, d := range deps {
			if forbiddenDep(pkg, d) {
				t.Errorf("%s depends on %s (go list -deps): a pure package reaches no etcd, HTTP, storage engine or server package", pkg, d)
			}
		}
	}
}

// engines are the storage packages (objects, hints, refs): they reach no HTTP, etcd or RPC
// package, directly or through another package (issue 16.2).
var engines = []string{"datanode/store", "datanode/hints", "datanode/refstore"}

func engineForbids(dep string) bool {
	for _, p := range []string{"net/http", "github.com/valyala/fasthttp", "go.etcd.io/", "google.golang.org/grpc", module + "/api/client"} {
		if under(dep, p) || strings.HasPrefix(dep, p) {
			return true
		}
	}
	return dep == module+"/api"
}

// TestEnginesReachNoHTTP runs go list -deps over the storage engine and
// hinted handoff and fails on any HTTP, etcd or wire-contract dependency.
func TestEnginesReachNoHTTP(t *testing.T) {
	for _, pkg := range engines {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, module+"/"+pkg) || len(deps) < 10 {
			t.Fatalf("%s: go list -deps shows %d deps without the package itself; the check saw nothing", pkg, len(deps))
		}
		for _, d := range deps {
			if engineForbids(d) {
				t.Errorf("%s depends on %s: the storage engine reaches no HTTP, etcd or wire-contract package", pkg, d)
			}
		}
	}
	if !engineForbids("net/http") || !engineForbids(module+"/api") || engineForbids(module+"/api/objid") || engineForbids("crypto/sha256") {
		t.Fatal("engineForbids: the rule itself is wrong")
	}
}

// TestImportDirection runs go list over the module and fails on any edge
// against the house direction.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	edges := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			edges++
			if to := strings.TrimPrefix(imp, module+"/"); forbiddenImport(from, to) {
				t.Errorf("%s imports %s: against the house import direction", from, to)
			}
		}
	}
	if edges == 0 {
		t.Fatal("go list showed no internal imports; the check saw nothing")
	}
}

// apiAllows says whether the wire contract may depend on dep, directly or
// through its leaves: STYLE.md's rule that api imports only the standard
// library and a hash library at most. Its only imports of ours are its own
// leaves, api/objid and api/refdata, which it re-exports (api.OID); they
// hold to the same rule, so the closure is the standard library, them and
// sha1cd (SHA-1 with collision detection).
func apiAllows(dep string) bool {
	first, _, _ := strings.Cut(dep, "/")
	return !strings.Contains(first, ".") || dep == module+"/api" ||
		dep == module+"/api/objid" || dep == module+"/api/refdata" || under(dep, "github.com/pjbgf/sha1cd")
}

// TestAPIReachesOnlyTheStandardLibrary runs go list -deps over api and
// fails on any dependency outside the standard library, api's two leaves
// and sha1cd.
func TestAPIReachesOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/api").Output()
	if err != nil {
		t.Fatalf("go list -deps api: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/api/objid") || len(deps) < 10 {
		t.Fatalf("go list -deps api shows %d deps without api/objid; the check saw nothing", len(deps))
	}
	for _, d := range deps {
		if !apiAllows(d) {
			t.Errorf("api depends on %s: the wire contract reaches only the standard library, its leaves and a hash library", d)
		}
	}
	if apiAllows(module+"/ring") || apiAllows("github.com/valyala/fasthttp") || !apiAllows("net/http") || !apiAllows("github.com/pjbgf/sha1cd/ubc") {
		t.Fatal("apiAllows: the rule itself is wrong")
	}
}
