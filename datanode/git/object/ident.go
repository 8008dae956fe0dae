package object

import (
	"bytes"
	"strconv"
)

// Ident is an author, committer or tagger line: "Name <email> when tz".
type Ident struct {
	Name  string
	Email string
	When  int64  // seconds since the epoch
	Zone  string // "+hhmm" or "-hhmm"
}

// parseIdent parses an ident line loosely (no checks), as Git does when it
// reads a commit: it looks for the last '>' and reads the date after it.
func parseIdent(b []byte) Ident {
	var id Ident
	lt := bytes.IndexByte(b, '<')
	gt := bytes.LastIndexByte(b, '>')
	if lt < 0 || gt < lt {
		id.Name = string(bytes.TrimSpace(b))
		return id
	}
	id.Name = string(bytes.TrimSpace(b[:lt]))
	id.Email = string(b[lt+1 : gt])
	f := bytes.Fields(b[gt+1:])
	if len(f) > 0 {
		id.When, _ = strconv.ParseInt(string(f[0]), 10, 64)
	}
	if len(f) > 1 {
		id.Zone = string(f[1])
	}
	return id
}

// checkIdent checks an ident line (without its trailing newline) the way
// Git's fsck_ident does; t is the object type for the error.
func checkIdent(t Type, b []byte) error {
	if len(b) > 0 && b[0] == '<' {
		return bad(t, "missingNameBeforeEmail", "%q", b)
	}
	lt := bytes.IndexAny(b, "<>")
	if lt >= 0 && b[lt] == '>' {
		return bad(t, "badName", "%q", b)
	}
	if lt < 0 {
		return bad(t, "missingEmail", "%q", b)
	}
	if b[lt-1] != ' ' {
		return bad(t, "missingSpaceBeforeEmail", "%q", b)
	}
	gt := bytes.IndexAny(b[lt+1:], "<>")
	if gt < 0 || b[lt+1+gt] == '<' {
		return bad(t, "badEmail", "%q", b)
	}
	rest := b[lt+1+gt+1:]
	if len(rest) == 0 || rest[0] != ' ' {
		return bad(t, "missingSpaceBeforeDate", "%q", b)
	}
	rest = rest[1:]
	if len(rest) > 1 && rest[0] == '0' && rest[1] != ' ' {
		return bad(t, "zeroPaddedDate", "%q", b)
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		if _, err := strconv.ParseUint(string(rest[:digits]), 10, 64); err != nil {
			return bad(t, "badDateOverflow", "%q", b)
		}
	}
	if digits == 0 || digits == len(rest) || rest[digits] != ' ' {
		return bad(t, "badDate", "%q", b)
	}
	z := rest[digits+1:]
	if len(z) != 5 || (z[0] != '+' && z[0] != '-') || !allDigits(z[1:]) {
		return bad(t, "badTimezone", "%q", b)
	}
	return nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
