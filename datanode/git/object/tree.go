package object

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Tree entry modes as Git writes them.
const (
	ModeFile       uint32 = 0o100644
	ModeExecutable uint32 = 0o100755
	ModeSymlink    uint32 = 0o120000
	ModeDir        uint32 = 0o40000
	ModeSubmodule  uint32 = 0o160000
	modeGroupWrite uint32 = 0o100664 // written by very old Git; strict refuses
)

// TreeEntry is one entry of a tree.
type TreeEntry struct {
	Mode uint32
	Name string
	ID   ID
}

// IsDir reports whether the entry is a subtree.
func (e TreeEntry) IsDir() bool { return e.Mode == ModeDir }

// rawEntry is a tree entry as written, with its mode text kept for checks.
type rawEntry struct {
	mode []byte
	name []byte
	id   []byte
}

// nextEntry splits the first entry off a tree body.
func nextEntry(b []byte) (rawEntry, []byte, error) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 {
		return rawEntry{}, nil, bad(Tree, "badTree", "entry has no mode")
	}
	nul := bytes.IndexByte(b[sp+1:], 0)
	if nul < 0 || len(b) < sp+1+nul+1+20 {
		return rawEntry{}, nil, bad(Tree, "badTree", "truncated entry")
	}
	e := rawEntry{mode: b[:sp], name: b[sp+1 : sp+1+nul]}
	rest := b[sp+1+nul+1:]
	e.id = rest[:20]
	return e, rest[20:], nil
}

// parseMode parses an octal mode. Git accepts any octal digits here; the
// value is checked separately.
func parseMode(s []byte) (uint32, bool) {
	if len(s) == 0 || len(s) > 7 {
		return 0, false
	}
	var m uint32
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, false
		}
		m = m<<3 | uint32(s[i]-'0')
	}
	return m, true
}

// ParseTree returns a tree's entries. It refuses only what cannot be parsed
// (a missing mode, a short entry, a non-octal mode); Check refuses the rest.
func ParseTree(body []byte) ([]TreeEntry, error) {
	// An entry is about 40 bytes or more; the guess is capped so that a
	// large body that fails at its first entry allocates little.
	out := make([]TreeEntry, 0, min(len(body)/40, 1024))
	err := WalkTree(body, func(mode uint32, name []byte, id ID) {
		out = append(out, TreeEntry{Mode: mode, Name: string(name), ID: id})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WalkTree calls fn with each entry of a tree's body, in order, copying
// nothing: name is valid only during the call. It checks what ParseTree
// checks (the entries are whole, the modes octal), not what Check does.
// A push's connectivity walk uses it to note the IDs a tree names without
// making a string of every name.
func WalkTree(body []byte, fn func(mode uint32, name []byte, id ID)) error {
	for len(body) > 0 {
		e, rest, err := nextEntry(body)
		if err != nil {
			return err
		}
		m, ok := parseMode(e.mode)
		if !ok {
			return bad(Tree, "badTree", "mode %q is not octal", e.mode)
		}
		fn(m, e.name, ID(e.id))
		body = rest
	}
	return nil
}

// WriteTree returns the body of a tree holding entries, sorted in Git's
// order. It does not check names or modes.
func WriteTree(entries []TreeEntry) []byte {
	es := append([]TreeEntry(nil), entries...)
	sortTree(es)
	var b []byte
	for _, e := range es {
		b = fmt.Appendf(b, "%o %s\x00", e.Mode, e.Name)
		b = append(b, e.ID[:]...)
	}
	return b
}

func sortTree(es []TreeEntry) {
	for i := 1; i < len(es); i++ { // insertion sort: trees are small, keeps it stable
		for j := i; j > 0 && treeCompare(es[j].Name, es[j].IsDir(), es[j-1].Name, es[j-1].IsDir()) < 0; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// treeCompare orders names as Git's trees do: bytewise, a directory's name
// compared as if it ended in '/'.
func treeCompare(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	next := func(s string, dir bool) int {
		if len(s) > n {
			return int(s[n])
		}
		if dir {
			return '/'
		}
		return 0
	}
	return next(a, aDir) - next(b, bDir)
}

func checkTree(body []byte, o Options) error {
	seen := make(map[string]struct{})
	var prev string
	var prevDir bool
	for first := true; len(body) > 0; first = false {
		e, rest, err := nextEntry(body)
		if err != nil {
			return err
		}
		body = rest
		if err := checkMode(e.mode, o); err != nil {
			return err
		}
		name := string(e.name)
		if err := checkName(name); err != nil {
			return err
		}
		if o.Strict && bytes.Equal(e.id, make([]byte, 20)) {
			return bad(Tree, "nullSha1", "entry %q has the all-zero id", name)
		}
		if _, dup := seen[name]; dup {
			return bad(Tree, "duplicateEntries", "name %q appears twice", name)
		}
		seen[name] = struct{}{}
		m, _ := parseMode(e.mode)
		dir := m == ModeDir
		if !first && treeCompare(prev, prevDir, name, dir) >= 0 {
			return bad(Tree, "treeNotSorted", "%q after %q", name, prev)
		}
		prev, prevDir = name, dir
	}
	return nil
}

func checkMode(s []byte, o Options) error {
	m, ok := parseMode(s)
	if !ok {
		return bad(Tree, "badFilemode", "mode %q", s)
	}
	switch m {
	case ModeFile, ModeExecutable, ModeSymlink, ModeDir, ModeSubmodule:
	case modeGroupWrite:
		if o.Strict {
			return bad(Tree, "badFilemode", "mode %q (strict)", s)
		}
	default:
		return bad(Tree, "badFilemode", "mode %q", s)
	}
	if s[0] == '0' && o.Strict {
		return bad(Tree, "zeroPaddedFilemode", "mode %q", s)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return bad(Tree, "emptyName", "empty entry name")
	case strings.IndexByte(name, '/') >= 0:
		return bad(Tree, "fullPathname", "name %q contains '/'", name)
	case name == ".":
		return bad(Tree, "hasDot", "name %q", name)
	case name == "..":
		return bad(Tree, "hasDotdot", "name %q", name)
	case IsDotGit(name):
		return bad(Tree, "hasDotgit", "name %q is .git on some file system", name)
	}
	return nil
}

// IsDotGit reports whether a checkout of name would write into ".git" on a
// case-insensitive, HFS+ or NTFS file system (see the package doc).
func IsDotGit(name string) bool {
	if strings.EqualFold(name, "git~1") {
		return true
	}
	n := stripHFSIgnorable(name)
	if strings.EqualFold(n, ".git") {
		return true
	}
	if len(name) >= 4 && strings.EqualFold(name[:4], ".git") {
		rest := name[4:]
		if strings.HasPrefix(rest, ":") { // NTFS alternate data stream
			return true
		}
		if strings.Trim(rest, ". ") == "" { // NTFS drops trailing dots and spaces
			return true
		}
	}
	return false
}

func stripHFSIgnorable(s string) string {
	if !utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x200c && r <= 0x200f, r >= 0x202a && r <= 0x202e,
			r >= 0x206a && r <= 0x206f, r == 0xfeff:
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
