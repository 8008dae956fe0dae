package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzValidateRefName(f *testing.F) {
	for _, c := range refNameCases {
		f.Add(c.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateRefName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidRefName) {
				t.Fatalf("ValidateRefName(%q) = %v; want it to wrap ErrInvalidRefName", name, err)
			}
			return
		}
		if why := acceptedRefNameProblem(name); why != "" {
			t.Fatalf("ValidateRefName accepted %q, which %s", name, why)
		}
	})
}

// acceptedRefNameProblem restates the rules a valid ref name keeps, in a
// different form from the code under test.
func acceptedRefNameProblem(name string) string {
	switch {
	case !strings.HasPrefix(name, "refs/") || len(name) > MaxRefNameLen:
		return "lacks the prefix or is too long"
	case strings.Contains(name, "..") || strings.Contains(name, "//") || strings.Contains(name, "@{"):
		return `contains "..", "//" or "@{"`
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "contains a control byte"
	case strings.ContainsAny(name, " ~^:?*[\\"):
		return "contains a forbidden character"
	case strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") || strings.HasSuffix(name, ".lock"):
		return "has a forbidden ending"
	case strings.Contains(name, "/.") || strings.Contains(name, ".lock/"):
		return "has a component starting with '.' or ending with \".lock\""
	}
	return ""
}

func FuzzValidateRepo(f *testing.F) {
	for _, c := range repoCases {
		f.Add(c.name, "refs/heads/main")
	}
	f.Add("org/proj.git", "refs/tags/v1")
	f.Add("a", "refs/heads/refs/x")
	f.Add("a", "refs/heads/a..b")
	f.Fuzz(func(t *testing.T, repo, ref string) {
		err := ValidateRepo(repo)
		if err != nil {
			if !errors.Is(err, ErrInvalidRepo) {
				t.Fatalf("ValidateRepo(%q) = %v; want it to wrap ErrInvalidRepo", repo, err)
			}
			return
		}
		segs := strings.Split(repo, "/")
		if len(repo) > MaxRepoLen || len(segs) > MaxRepoSegments || strings.HasPrefix(repo, "/") {
			t.Fatalf("ValidateRepo accepted %q: too long, too many segments or a leading '/'", repo)
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || s == "refs" || strings.HasPrefix(s, ".") {
				t.Fatalf("ValidateRepo accepted %q with segment %q", repo, s)
			}
		}
		checkRoundTrip(t, repo, "")
		if ValidateRefName(ref) == nil {
			checkRoundTrip(t, repo, ref)
		}
	})
}

// checkRoundTrip checks that a valid repository and ref name (or "" for the
// collection) survive being joined into a URL path and parsed back.
func checkRoundTrip(t *testing.T, repo, ref string) {
	t.Helper()
	path := repo + "/" + ref
	if ref == "" {
		path = repo + "/refs"
	}
	gotRepo, gotRef, err := ParseRepoPath(path)
	if gotRepo != repo || gotRef != ref || err != nil {
		t.Fatalf("ParseRepoPath(%q) = %q, %q, %v; want %q, %q, nil", path, gotRepo, gotRef, err, repo, ref)
	}
}

func FuzzParseRepoPath(f *testing.F) {
	for _, s := range []string{
		"org/proj.git/refs", "org/proj.git/refs/", "org/proj.git/refs/heads/main",
		"a/refs/heads/refs/tags", "", "refs", "/refs", "org/x", "org/../refs",
		"org/x/refs//", "org/x/refs/heads/a..b", "org/refs/x/refs/heads/main",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		repo, ref, err := ParseRepoPath(path)
		if err != nil {
			if !errors.Is(err, ErrRouteNotFound) && !errors.Is(err, ErrInvalidRepo) && !errors.Is(err, ErrInvalidRefName) {
				t.Fatalf("ParseRepoPath(%q) = %v; want a route, repo or ref name error", path, err)
			}
			if repo != "" || ref != "" {
				t.Fatalf("ParseRepoPath(%q) = %q, %q with error %v; want empty names", path, repo, ref, err)
			}
			return
		}
		if ValidateRepo(repo) != nil || (ref != "" && ValidateRefName(ref) != nil) {
			t.Fatalf("ParseRepoPath(%q) = %q, %q: an invalid name got through", path, repo, ref)
		}
		want := repo + "/" + ref
		if ref == "" {
			want = repo + "/refs"
		}
		if path != want && path != want+"/" {
			t.Fatalf("ParseRepoPath(%q) = %q, %q; joined back it is %q", path, repo, ref, want)
		}
	})
}

func FuzzRefTxnJSON(f *testing.F) {
	sha1, sha256 := strings.Repeat("ab", 20), strings.Repeat("cd", 32)
	for _, s := range []string{
		`{"updates":[{"name":"refs/heads/main","old":"` + ZeroOID + `","new":"` + sha1 + `"}]}`,
		`{"updates":[{"name":"refs/heads/a","old":"` + sha256 + `","new":"` + strings.Repeat("0", 64) + `"},` +
			`{"name":"refs/tags/v1","old":"` + ZeroOID + `","new":"` + sha256 + `"}]}`,
		`{"updates":[{"name":"refs/heads/a","old":"` + sha1 + `","new":"` + sha256 + `"}]}`,
		`{"updates":[{"name":"refs/heads/a","old":"","new":"` + sha1 + `"}]}`,
		`{"updates":[{"name":"heads/a","old":"` + ZeroOID + `","new":"` + sha1 + `"}]}`,
		`{"updates":[]}`, `{}`, `null`, `[`, `{"updates":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var txn RefTxn
		if json.Unmarshal(body, &txn) != nil {
			return
		}
		if err := ValidateRefTxn(txn); err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrInvalidRefName) && !errors.Is(err, ErrInvalidOID) {
				t.Fatalf("ValidateRefTxn(%s) = %v; want a bad request, ref name or OID error", body, err)
			}
			return
		}
		checkAcceptedTxn(t, txn)
	})
}

// checkAcceptedTxn checks what an accepted transaction promises, and that it
// survives a JSON round trip unchanged and still valid.
func checkAcceptedTxn(t *testing.T, txn RefTxn) {
	t.Helper()
	if len(txn.Updates) == 0 || len(txn.Updates) > MaxRefUpdates {
		t.Fatalf("ValidateRefTxn accepted %d updates", len(txn.Updates))
	}
	names := map[string]bool{}
	for i, u := range txn.Updates {
		if names[u.Name] || ValidateRefName(u.Name) != nil {
			t.Fatalf("ValidateRefTxn accepted update %d name %q: duplicate or invalid", i, u.Name)
		}
		names[u.Name] = true
		for _, oid := range []string{u.Old, u.New} {
			if _, err := ParseOID(oid); err != nil && !IsZeroOID(oid) {
				t.Fatalf("ValidateRefTxn accepted update %d OID %q: %v", i, oid, err)
			}
		}
	}
	b, err := json.Marshal(txn)
	if err != nil {
		t.Fatalf("json.Marshal(accepted txn): %v", err)
	}
	var back RefTxn
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, txn) || ValidateRefTxn(back) != nil {
		t.Fatalf("accepted txn did not survive a JSON round trip: %v; got %+v; want %+v", err, back, txn)
	}
}
