package object

// TagInfo is what a server needs from an annotated tag: what it points at
// (for include-tag and peeling).
type TagInfo struct {
	Object ID
	Type   Type
	Name   string
	Tagger *Ident // nil for old tags without a tagger
}

// ParseTag extracts a tag's target, target type, name and tagger.
func ParseTag(body []byte) (TagInfo, error) {
	var t TagInfo
	var haveObj, haveType bool
	for _, h := range headers(body) {
		switch string(h.key) {
		case "object":
			if haveObj {
				continue
			}
			id, err := ParseID(string(h.value))
			if err != nil {
				return t, bad(Tag, "badObjectSha1", "%q", h.value)
			}
			t.Object, haveObj = id, true
		case "type":
			if haveType {
				continue
			}
			ty, err := ParseType(string(h.value))
			if err != nil {
				return t, bad(Tag, "badType", "%q", h.value)
			}
			t.Type, haveType = ty, true
		case "tag":
			t.Name = string(h.value)
		case "tagger":
			id := parseIdent(h.value)
			t.Tagger = &id
		}
	}
	if !haveObj {
		return t, bad(Tag, "missingObject", "no object header")
	}
	if !haveType {
		return t, bad(Tag, "missingTypeEntry", "no type header")
	}
	return t, nil
}

func checkTag(body []byte) error {
	if err := verifyHeaders(Tag, body); err != nil {
		return err
	}
	v, b, ok := line(body, "object")
	if !ok {
		return bad(Tag, "missingObject", "first header is not object")
	}
	if err := checkHexLine(Tag, "badObjectSha1", v); err != nil {
		return err
	}
	v, b, ok = line(b, "type")
	if !ok {
		return bad(Tag, "missingTypeEntry", "no type after object")
	}
	if _, err := ParseType(string(v)); err != nil {
		return bad(Tag, "badType", "%q", v)
	}
	_, b, ok = line(b, "tag")
	if !ok {
		return bad(Tag, "missingTagEntry", "no tag after type")
	}
	if v, _, ok := line(b, "tagger"); ok {
		return checkIdent(Tag, v)
	}
	return nil
}
