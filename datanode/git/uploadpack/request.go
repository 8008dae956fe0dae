package uploadpack

import (
	"strconv"
	"strings"

	"github.com/stratum-store/stratum/datanode/git/object"
)

// fetchRequest is a fetch, from protocol v0 (wants with capabilities,
// then haves) or v2 (the fetch command's arguments).
type fetchRequest struct {
	wants, haves, shallows []object.ID
	depth                  int
	since                  int64    // deepen-since, 0 if not asked
	deepenNot              []string // ref names
	done, waitForDone      bool
	deepenRelative         bool // deepen counts from the client's boundary
	wantsOnly              bool // v0: the body ended after the wants (a stateless client's first deepen request)
	multiAck               bool // v0 multi_ack_detailed
	sideband               bool // v0 side-band-64k; always in v2
	noProgress, includeTag bool
	ofsDelta               bool   // the client reads OFS_DELTA entries
	filter                 string // "blob:none" or "" (no filter)
}

// parseFilter takes a "filter <spec>" line: blob:none is the one filter
// supported (a partial clone without blobs, fetched later as needed).
func (r *fetchRequest) parseFilter(line string) (bool, error) {
	spec, ok := strings.CutPrefix(line, "filter ")
	if !ok {
		return false, nil
	}
	if spec != "blob:none" {
		return true, protocolErr("filter %q is not supported (only blob:none)", spec)
	}
	r.filter = spec
	return true, nil
}

// deepens reports whether the client asked for a new shallow boundary.
func (r *fetchRequest) deepens() bool { return r.depth > 0 || r.since != 0 || len(r.deepenNot) > 0 }

// parseShallowArg handles the shallow, deepen and filter arguments common
// to v0 and v2. It reports whether line was one of them.
func (r *fetchRequest) parseShallowArg(line string) (bool, error) {
	if ok, err := r.parseFilter(line); ok {
		return true, err
	}
	switch {
	case strings.HasPrefix(line, "shallow "):
		id, err := parseOID(line, "shallow ")
		r.shallows = append(r.shallows, id)
		return true, err
	case strings.HasPrefix(line, "deepen "):
		n, err := strconv.Atoi(line[len("deepen "):])
		if err != nil || n <= 0 {
			return true, protocolErr("invalid deepen: %q", line)
		}
		r.depth = n
	case strings.HasPrefix(line, "deepen-since "):
		n, err := strconv.ParseInt(line[len("deepen-since "):], 10, 64)
		if err != nil || n <= 0 {
			return true, protocolErr("invalid deepen-since: %q", line)
		}
		r.since = n
	case strings.HasPrefix(line, "deepen-not "):
		name := line[len("deepen-not "):]
		if name == "" {
			return true, protocolErr("invalid deepen-not: %q", line)
		}
		r.deepenNot = append(r.deepenNot, name)
	case line == "deepen-relative":
		r.deepenRelative = true
	default:
		return false, nil
	}
	if r.depth > 0 && (r.since != 0 || len(r.deepenNot) > 0) {
		return true, protocolErr("deepen and deepen-since (or deepen-not) cannot be used together")
	}
	return true, nil
}

// parseOID parses the object ID after prefix in line.
func parseOID(line, prefix string) (object.ID, error) {
	s := strings.TrimPrefix(line, prefix)
	id, err := object.ParseID(s)
	if err != nil {
		return id, protocolErr("expected an object ID after %q, got %q", strings.TrimSpace(prefix), s)
	}
	return id, nil
}

// hasCap reports whether a v0 capability list (space separated) has c.
func hasCap(caps, c string) bool {
	for _, f := range strings.Fields(caps) {
		if f == c {
			return true
		}
	}
	return false
}
