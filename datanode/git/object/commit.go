package object

import (
	"bytes"
	"fmt"
)

// CommitInfo is what a server needs from a commit: its tree and parents for
// reachability, the committer time for deepen-since.
type CommitInfo struct {
	Tree      ID
	Parents   []ID
	Author    Ident
	Committer Ident
}

// header is one "key value" line of a commit or tag header.
type header struct {
	key, value []byte
}

// headers returns the header lines before the first blank line. Continuation
// lines (starting with a space, as in gpgsig) are skipped.
func headers(body []byte) []header {
	var out []header
	for len(body) > 0 {
		nl := bytes.IndexByte(body, '\n')
		line := body
		if nl >= 0 {
			line, body = body[:nl], body[nl+1:]
		} else {
			body = nil
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' {
			continue
		}
		k, v, _ := bytes.Cut(line, []byte(" "))
		out = append(out, header{k, v})
	}
	return out
}

// ParseCommit extracts a commit's tree, parents, author and committer. It
// fails only if the tree or a parent ID cannot be read; Check does the rest.
func ParseCommit(body []byte) (CommitInfo, error) {
	var c CommitInfo
	haveTree := false
	for _, h := range headers(body) {
		switch string(h.key) {
		case "tree":
			if haveTree {
				continue
			}
			id, err := ParseID(string(h.value))
			if err != nil {
				return c, bad(Commit, "badTreeSha1", "%q", h.value)
			}
			c.Tree, haveTree = id, true
		case "parent":
			id, err := ParseID(string(h.value))
			if err != nil {
				return c, bad(Commit, "badParentSha1", "%q", h.value)
			}
			c.Parents = append(c.Parents, id)
		case "author":
			c.Author = parseIdent(h.value)
		case "committer":
			c.Committer = parseIdent(h.value)
		}
	}
	if !haveTree {
		return c, bad(Commit, "missingTree", "no tree header")
	}
	return c, nil
}

// verifyHeaders refuses a NUL byte in the header part and a header whose
// last line has no newline (Git's verify_headers).
func verifyHeaders(t Type, body []byte) error {
	end := bytes.Index(body, []byte("\n\n"))
	hdr := body
	if end >= 0 {
		hdr = body[:end+1]
	}
	if bytes.IndexByte(hdr, 0) >= 0 {
		return bad(t, "nulInHeader", "NUL byte in the header")
	}
	if end < 0 && (len(body) == 0 || body[len(body)-1] != '\n') {
		return bad(t, "unterminatedHeader", "header does not end with a newline")
	}
	return nil
}

// line takes "<key> <value>\n" off the front of b.
func line(b []byte, key string) (value, rest []byte, ok bool) {
	p := []byte(key + " ")
	if !bytes.HasPrefix(b, p) {
		return nil, b, false
	}
	b = b[len(p):]
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return b, nil, true
	}
	return b[:nl], b[nl+1:], true
}

func checkHexLine(t Type, id string, v []byte) error {
	if !isLowerHex(string(v), 40) {
		return bad(t, id, "%q", v)
	}
	return nil
}

func checkCommit(body []byte) error {
	if err := verifyHeaders(Commit, body); err != nil {
		return err
	}
	v, b, ok := line(body, "tree")
	if !ok {
		return bad(Commit, "missingTree", "first header is not tree")
	}
	if err := checkHexLine(Commit, "badTreeSha1", v); err != nil {
		return err
	}
	for {
		v, rest, ok := line(b, "parent")
		if !ok {
			break
		}
		if err := checkHexLine(Commit, "badParentSha1", v); err != nil {
			return err
		}
		b = rest
	}
	v, b, ok = line(b, "author")
	if !ok {
		return bad(Commit, "missingAuthor", "no author after tree and parents")
	}
	if err := checkIdent(Commit, v); err != nil {
		return err
	}
	if v, _, ok := line(b, "author"); ok {
		return bad(Commit, "multipleAuthors", "second author %q", v)
	}
	v, _, ok = line(b, "committer")
	if !ok {
		return bad(Commit, "missingCommitter", "no committer after author")
	}
	if err := checkIdent(Commit, v); err != nil {
		return fmt.Errorf("committer: %w", err)
	}
	return nil
}
