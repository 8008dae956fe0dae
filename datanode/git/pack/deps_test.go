package pack

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeafImports keeps the datanode/git packages leaves: the standard
// library, the hash and compression libraries, and each other; no HTTP
// server, etcd or stratum node code.
func TestLeafImports(t *testing.T) {
	const mod = "github.com/stratum-store/stratum/"
	allowed := []string{mod + "datanode/git/", "github.com/pjbgf/sha1cd", "github.com/klauspost/compress"}
	for _, pkg := range []string{"../pktline", "../object", "."} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(dep, a)
			}
			if !ok {
				t.Errorf("%s imports %s; want only %v and the standard library", pkg, dep, allowed)
			}
		}
	}
}
