package refdata

import "testing"

// A transaction's identity covers every field with its length, so changes
// that concatenate to the same bytes are still two transactions.
func TestTxnIDSeparatesFields(t *testing.T) {
	a := TxnID([]Change{{Repo: "ab", Name: "refs/heads/x", OID: ZeroOID}})
	b := TxnID([]Change{{Repo: "a", Name: "brefs/heads/x", OID: ZeroOID}})
	if a == b {
		t.Fatalf("TxnID of two different changes is %s for both", a)
	}
	if again := TxnID([]Change{{Repo: "ab", Name: "refs/heads/x", OID: ZeroOID}}); again != a {
		t.Fatalf("TxnID is not a function of the changes: %s then %s", a, again)
	}
}

func TestVersionOrder(t *testing.T) {
	f := func(a, b Version, want bool) {
		t.Helper()
		if got := a.Less(b); got != want {
			t.Fatalf("%+v.Less(%+v) = %t; want %t", a, b, got, want)
		}
	}
	f(Version{Epoch: 1, Seq: 9}, Version{Epoch: 2, Seq: 0}, true)
	f(Version{Epoch: 2, Seq: 1}, Version{Epoch: 2, Seq: 2}, true)
	f(Version{Epoch: 2, Seq: 2, Txn: "a"}, Version{Epoch: 2, Seq: 2, Txn: "b"}, false) // Txn does not order
	f(Version{Epoch: 3}, Version{Epoch: 2, Seq: 99}, false)
}
