// Package object holds Git's four object types, their canonical form and
// object IDs, parsers for the fields a server needs (a tree's entries, a
// commit's tree, parents and committer time, a tag's target), and the
// consistency checks `git fsck --strict` and `receive.fsckObjects` apply.
//
// # Canonical form and IDs
//
// A Git object is a type (blob, tree, commit, tag) and a body. Its canonical
// form is "<type> <decimal size>\x00<body>", and its ID is the SHA-1 of the
// canonical form. IDs are computed with collision detection (sha1cd, the same
// algorithm as Git's sha1dc): an input that carries the signature of a known
// SHA-1 collision attack is refused with ErrCollision rather than hashed, so a
// crafted object can never take over another's ID. Only SHA-1 repositories
// are supported; SHA-256 object formats are not implemented.
//
// # What the checks refuse, and why
//
// Check(type, body, opts) returns a *CheckError naming Git's fsck message ID
// (treeNotSorted, badFilemode, missingAuthor, ...) so a server can report it
// the way Git does. Errors are refused always; Git's "warnings" are refused
// only with Options.Strict (as `git fsck --strict` and transfer.fsckObjects
// with strict mode do).
//
// Trees. Each entry is "<octal mode> <name>\x00<20-byte id>".
//   - Modes: 100644 (file), 100755 (executable), 120000 (symlink), 40000
//     (directory), 160000 (submodule). Git writes directories as "40000";
//     strict mode also refuses the old 100664 (badFilemode) and zero-padded
//     modes such as "040000" (zeroPaddedFilemode). Any other mode is refused
//     always.
//   - Names: non-empty (emptyName), no '/' (fullPathname), not "." (hasDot),
//     ".." (hasDotdot) or ".git" (hasDotgit). ".git" is matched as Git does
//     for checkouts on case-insensitive and normalising file systems:
//     case-insensitively; with HFS+ ignorable code points (U+200C..U+200F,
//     U+202A..U+202E, U+206A..U+206F, U+FEFF) removed; with NTFS trailing
//     dots and spaces removed; an NTFS alternate stream ".git::$..."; and the
//     NTFS short name "git~1". These name checks are refused always, because
//     such a tree can overwrite a client's .git directory on checkout (CVE-
//     2014-9390), whatever Git's default message level. Checks of the content
//     of .gitmodules and .gitattributes blobs are not implemented.
//   - Order: entries are sorted by name, a directory comparing as if its name
//     ended in '/' (treeNotSorted), and no name appears twice, whatever the
//     modes (duplicateEntries). Order is what makes a tree's ID unique for
//     its content; duplicates make a checkout ambiguous.
//   - An all-zero entry ID (nullSha1) is refused in strict mode.
//
// Commits. "tree <hex>\n", any number of "parent <hex>\n", exactly one
// "author <ident>\n", one "committer <ident>\n", then any other headers
// (encoding, gpgsig, mergetag, ...), a blank line and the message. An ident
// is "Name <email> <seconds> <+hhmm|-hhmm>": a space before '<', no '<' or
// '>' inside the name or email, a space after '>', a decimal date without
// leading zeros that fits in 64 bits, a four-digit zone. No NUL byte in the
// headers.
//
// Tags. "object <hex>\n", "type <blob|tree|commit|tag>\n", "tag <name>\n",
// then optionally "tagger <ident>\n" (old tags have none; Git accepts them),
// other headers, a blank line and the message.
//
// # Caveats
//
// Parsing is not checking: ParseCommit and ParseTag extract fields from any
// body Git could have written and ignore the rest; run Check on what comes
// from outside before trusting it. Parsed values alias nothing: they are
// copies.
package object
