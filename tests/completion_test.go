package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShellCompletion: `stratum completion bash` is a script that bash
// sources and that completes commands and flags by asking the binary;
// `stratum completion zsh` is a zsh completion function (checked for syntax
// when zsh is installed).
func TestShellCompletion(t *testing.T) {
	bin := buildBinary(t)
	out, errOut, code := run(t, bin, "", "completion", "bash")
	if code != 0 || !strings.Contains(out, "complete ") {
		t.Fatalf("completion bash: code %d, stderr %q, out %q; want 0 and a bash complete line", code, errOut, out)
	}
	script := filepath.Join(t.TempDir(), "stratum.bash")
	os.WriteFile(script, []byte(out), 0o644)
	f := func(words, want string) {
		t.Helper()
		cmd := exec.Command("bash", "-c", `source "$1"; read -ra COMP_WORDS <<< "$2"; COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _stratum_complete; echo "${COMPREPLY[*]}"`,
			"bash", script, words)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		got, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Fatalf("completing %q: got %q (err %v); want %q", words, strings.TrimSpace(string(got)), err, want)
		}
	}
	f("stratum pu", "put")
	f("stratum reb", "rebalance")
	f("stratum put --con", "--consistency")
	f("stratum completion", "completion")

	out, _, code = run(t, bin, "", "completion", "zsh")
	if code != 0 || !strings.HasPrefix(out, "#compdef stratum") || !strings.Contains(out, "--generate-bash-completion") {
		t.Fatalf("completion zsh: code %d, out %q; want 0 and a #compdef function", code, out)
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if b, err := exec.Command(zsh, "-n", "-c", out).CombinedOutput(); err != nil {
			t.Fatalf("zsh -n on the zsh script: %v %s", err, b)
		}
	}
	if _, errOut, code := run(t, bin, "", "completion", "fish"); code != 2 {
		t.Fatalf("completion fish: code %d, stderr %q; want usage error 2", code, errOut)
	}
}
