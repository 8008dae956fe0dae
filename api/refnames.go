package api

import (
	"fmt"
	"strings"

	"github.com/stratum-store/stratum/api/refdata"
)

// Names are validated by the leaf package refdata (so the ref store needs
// no wire contract); the wire contract re-exports its rules.
const (
	MaxRepoLen      = refdata.MaxRepoLen
	MaxRepoSegments = refdata.MaxRepoSegments
	MaxRefNameLen   = refdata.MaxRefNameLen
)

// ValidateRepo checks a repository name (refdata.ValidateRepo).
func ValidateRepo(name string) error { return refdata.ValidateRepo(name) }

// ValidateRefName checks a full ref name (refdata.ValidateRefName).
func ValidateRefName(name string) error { return refdata.ValidateRefName(name) }

// ParseRepoPath splits the part of a URL path after PathRepos (already
// percent-decoded) into a repository name and a ref name:
//
//	"org/proj.git/refs"                 -> "org/proj.git", ""  (the collection)
//	"org/proj.git/refs/"                -> "org/proj.git", ""  (the collection)
//	"org/proj.git/refs/heads/main"      -> "org/proj.git", "refs/heads/main"
//	"org/proj.git/refs/heads/refs/tags" -> "org/proj.git", "refs/heads/refs/tags"
//
// The split is at the first segment equal to "refs"; ValidateRepo forbids
// that segment in repository names, so the split is unambiguous and
// ParseRepoPath(repo+"/"+ref) gives back (repo, ref) for every valid pair.
// The ref name keeps its "refs/" prefix: it is the full name Git uses.
//
// A path with no "refs" segment names no route of the API and yields an
// error wrapping ErrRouteNotFound (HTTP 404); an empty or invalid repository
// wraps ErrInvalidRepo and an invalid ref name ErrInvalidRefName (HTTP 400).
func ParseRepoPath(path string) (repo, ref string, err error) {
	i := indexRefsSegment(path)
	if i < 0 {
		return "", "", fmt.Errorf(`%w: %.100q has no "refs" segment`, ErrRouteNotFound, path)
	}
	repo = strings.TrimSuffix(path[:i], "/")
	if err := ValidateRepo(repo); err != nil {
		return "", "", err
	}
	if rest := path[i+len(refdata.ReservedSegment):]; rest == "" || rest == "/" {
		return repo, "", nil
	}
	if err := ValidateRefName(path[i:]); err != nil {
		return "", "", err
	}
	return repo, path[i:], nil
}

// indexRefsSegment returns the byte offset of the first '/'-separated
// segment of path equal to "refs", or -1.
func indexRefsSegment(path string) int {
	for start := 0; start <= len(path); {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path) - start
		}
		if path[start:start+end] == refdata.ReservedSegment {
			return start
		}
		start += end + 1
	}
	return -1
}

// ValidateRefTxn checks a transaction before any of it runs: 1 to
// MaxRefUpdates updates, each naming a valid ref (ValidateRefName) that no
// other update names, with Old and New each a zero OID (IsZeroOID: "must not
// exist" and "delete") or a valid OID (ParseOID). Old and New of one update
// must be of the same algorithm unless one of them is zero, since a
// repository uses one hash. Errors name the update's index and wrap
// ErrBadRequest, ErrInvalidRefName or ErrInvalidOID.
func ValidateRefTxn(t RefTxn) error {
	if n := len(t.Updates); n == 0 || n > MaxRefUpdates {
		return fmt.Errorf("%w: %d updates, want 1 to %d", ErrBadRequest, n, MaxRefUpdates)
	}
	seen := make(map[string]int, len(t.Updates))
	for i, u := range t.Updates {
		if j, dup := seen[u.Name]; dup {
			return fmt.Errorf("%w: updates %d and %d both name %.100q", ErrBadRequest, j, i, u.Name)
		}
		seen[u.Name] = i
		if err := validateRefUpdate(u); err != nil {
			return fmt.Errorf("update %d: %w", i, err)
		}
	}
	return nil
}

func validateRefUpdate(u RefUpdate) error {
	if err := ValidateRefName(u.Name); err != nil {
		return err
	}
	if err := validateTxnOID("old", u.Old); err != nil {
		return err
	}
	if err := validateTxnOID("new", u.New); err != nil {
		return err
	}
	if len(u.Old) != len(u.New) && !IsZeroOID(u.Old) && !IsZeroOID(u.New) {
		return fmt.Errorf("%w: old has %d characters and new %d: one repository, one hash",
			ErrInvalidOID, len(u.Old), len(u.New))
	}
	return nil
}

func validateTxnOID(field, s string) error {
	if IsZeroOID(s) {
		return nil
	}
	if _, err := ParseOID(s); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}
