package httpbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stratum-store/stratum/api"
)

// FuzzDecodeRefTxn: the streaming decoder of ref transactions accepts
// whatever encoding/json accepts (short of the item limit, and a bare
// null), never returns more than api.MaxRefUpdates updates, and returns
// as many updates as encoding/json when "updates" appears once.
func FuzzDecodeRefTxn(f *testing.F) {
	for _, s := range []string{
		`{"updates":[{"name":"refs/heads/main","old":"0000000000000000000000000000000000000000","new":"ce013625030ba8dba906f756967f9e9ca394464a"}]}`,
		`{"updates":[]}`, `{"updates":null}`, `{}`, `{"other":[1,2,{"x":3}],"updates":[{}]}`,
		`{"updates":[{},{}]} `, `{"updates":[{}]}x`, `{"updates":{}}`, `[]`, `null`, ``, `{"updates":[{"name":1}]}`,
		`{"updates":[` + strings.Repeat(`{},`, api.MaxRefUpdates) + `{}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := DecodeRefTxn(in)
		if len(got.Updates) > api.MaxRefUpdates+1 {
			t.Fatalf("%d updates decoded; want at most %d", len(got.Updates), api.MaxRefUpdates+1)
		}
		var want api.RefTxn
		stdErr := json.Unmarshal(in, &want)
		if stdErr == nil && err != nil && !errors.Is(err, api.ErrTooLarge) && string(bytes.TrimSpace(in)) != "null" {
			t.Fatalf("DecodeRefTxn(%q): %v; encoding/json accepts it", in, err)
		}
		once := bytes.Count(bytes.ToLower(in), []byte(`"updates"`)) == 1 && !bytes.Contains(in, []byte(`\u`)) // encoding/json folds case and escapes in keys
		if err == nil && stdErr == nil && once && len(want.Updates) != len(got.Updates) {
			t.Fatalf("DecodeRefTxn(%q): %d updates; encoding/json: %d", in, len(got.Updates), len(want.Updates))
		}
		if err != nil && !errors.Is(err, api.ErrTooLarge) && !errors.Is(err, api.ErrBadRequest) {
			t.Fatalf("DecodeRefTxn(%q): %v; want too_large or bad_request", in, err)
		}
	})
}
