package tests

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stratum-store/stratum"

func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

// forbiddenImport states the house import direction (../shared/STYLE.md):
// ring and api import nothing of ours, api/client never reaches the servers,
// controlplane and datanode never import each other, the client or cli.
func forbiddenImport(from, to string) bool {
	switch {
	case under(from, "ring"), from == "api":
		return true
	case under(from, "api/client"):
		return under(to, "controlplane") || under(to, "datanode") || under(to, "cli")
	case under(from, "controlplane"):
		return under(to, "datanode") || under(to, "cli") || under(to, "api/client")
	case under(from, "datanode"):
		return under(to, "controlplane") || under(to, "cli") || under(to, "api/client")
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
	f("datanode/store", "api", false)
	f("controlplane", "ring", false)
	f("cli", "datanode", false)
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
