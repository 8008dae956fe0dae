package refdata

import (
	"fmt"
	"strings"
)

// Limits on names, part of the wire contract (docs/refs.md, "Names").
const (
	// MaxRepoLen bounds a repository name in bytes.
	MaxRepoLen = 255
	// MaxRepoSegments bounds the '/'-separated segments of a repository name.
	MaxRepoSegments = 16
	// MaxRefNameLen bounds a ref name in bytes.
	MaxRefNameLen = 1024
)

// ReservedSegment is the one segment a repository name may not contain: in
// /v1/repos/{repo}/refs/{refname} the repository name may itself contain '/',
// so the first segment spelled "refs" is what tells where it ends. Were
// "org/refs/x" a valid repository, "/v1/repos/org/refs/x/refs/heads/main"
// would have two readings.
const ReservedSegment = "refs"

// ValidateRepo checks a repository name: 1 to MaxRepoLen bytes of at most
// MaxRepoSegments '/'-separated segments, each non-empty, made only of
// [A-Za-z0-9._-], not starting with '.' (so neither "." nor ".." can appear
// and a name can never climb out of a directory), and not equal to "refs"
// (see ParseRepoPath). Names are compared byte for byte: "Org/x" and "org/x"
// are two repositories. The error wraps ErrInvalidRepo and says which rule
// the name breaks.
func ValidateRepo(name string) error {
	if why := repoProblem(name); why != "" {
		return fmt.Errorf("%w: %.100q: %s", ErrInvalidRepo, name, why)
	}
	return nil
}

func repoProblem(name string) string {
	if len(name) == 0 || len(name) > MaxRepoLen {
		return fmt.Sprintf("%d bytes, want 1 to %d", len(name), MaxRepoLen)
	}
	n := 0
	for seg := range strings.SplitSeq(name, "/") {
		if n++; n > MaxRepoSegments {
			return fmt.Sprintf("more than %d segments", MaxRepoSegments)
		}
		if why := repoSegmentProblem(seg); why != "" {
			return fmt.Sprintf("segment %d %q %s", n, seg, why)
		}
	}
	return ""
}

func repoSegmentProblem(seg string) string {
	switch {
	case seg == "":
		return "is empty (leading, trailing or doubled '/')"
	case seg[0] == '.':
		return "starts with '.'"
	case seg == ReservedSegment:
		return `is "refs", which separates the repository from the ref name in URLs`
	}
	for i := 0; i < len(seg); i++ {
		if !isRepoByte(seg[i]) {
			return fmt.Sprintf("contains %q; allowed are A-Z a-z 0-9 . _ -", seg[i])
		}
	}
	return ""
}

func isRepoByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// ValidateRefName checks a full ref name such as "refs/heads/main". It must
// start with "refs/", be at most MaxRefNameLen bytes, and pass
// `git check-ref-format` (without --allow-onelevel, --refspec-pattern or
// --normalize), whose rules are:
//
//   - no component begins with '.' or ends with ".lock";
//   - no "..", no "@{", and the name is not "@";
//   - no control byte (below 0x20, or 0x7f), space, '~', '^', ':', '?', '*',
//     '[' or '\\';
//   - no leading or trailing '/', no "//", and no trailing '.'.
//
// Bytes from 0x80 up are allowed, as Git allows them; a URL carries them
// percent-encoded. Git's own refs code relies on these rules (".lock" files,
// "@{upstream}" and "a..b" revision syntax), so a name Git would refuse is
// refused here rather than stored where no Git client could fetch it. The
// error wraps ErrInvalidRefName.
func ValidateRefName(name string) error {
	if why := refNameProblem(name); why != "" {
		return fmt.Errorf("%w: %.100q: %s", ErrInvalidRefName, name, why)
	}
	return nil
}

func refNameProblem(name string) string {
	switch {
	case len(name) > MaxRefNameLen:
		return fmt.Sprintf("%d bytes, want at most %d", len(name), MaxRefNameLen)
	case !strings.HasPrefix(name, "refs/"):
		return `does not start with "refs/"`
	case strings.HasSuffix(name, "/"):
		return "ends with '/'"
	case strings.HasSuffix(name, "."):
		return "ends with '.'"
	case strings.Contains(name, ".."):
		return `contains ".."`
	case strings.Contains(name, "@{"):
		return `contains "@{"`
	}
	for i := 0; i < len(name); i++ {
		if isBadRefByte(name[i]) {
			return fmt.Sprintf("contains %q at byte %d", name[i], i)
		}
	}
	for comp := range strings.SplitSeq(name, "/") {
		switch {
		case comp == "":
			return `contains "//"`
		case comp[0] == '.':
			return fmt.Sprintf("component %q starts with '.'", comp)
		case strings.HasSuffix(comp, ".lock"):
			return fmt.Sprintf("component %q ends with \".lock\"", comp)
		}
	}
	return ""
}

func isBadRefByte(c byte) bool {
	return c < 0x20 || c == 0x7f || strings.IndexByte(" ~^:?*[\\", c) >= 0
}
