package refdata

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Ref is one ref and the OID it points at.
type Ref struct {
	Name string `json:"name"`
	OID  string `json:"oid"`
}

// IsZeroOID reports whether s is an all-zero object ID (40 or 64 zeros).
func IsZeroOID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0") == ""
}

// ZeroOID is the SHA-1 length zero OID, as Git writes it.
const ZeroOID = "0000000000000000000000000000000000000000"

// Version orders the states of one partition's replica: the epoch in
// which its last transaction was applied, then that transaction's sequence
// number. Txn is the identity of that last transaction (TxnID of its
// changes): a replica holding other changes at the same (epoch, seq) is in
// another state, and two versions are equal only with equal Txn.
type Version struct {
	Epoch int64  `json:"epoch"`
	Seq   uint64 `json:"seq"`
	Txn   string `json:"txn,omitempty"`
}

// TxnID is the identity of a replicated transaction: the hex SHA-256 of
// its changes, each as three length-prefixed fields. A replica compares it
// when it receives an apply at the version it already holds, so a retry is
// told from a different transaction that reuses the version.
func TxnID(changes []Change) string {
	h := sha256.New()
	var n [8]byte
	for _, c := range changes {
		for _, f := range []string{c.Repo, c.Name, c.OID} {
			binary.BigEndian.PutUint64(n[:], uint64(len(f)))
			h.Write(n[:])
			h.Write([]byte(f))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Less orders versions by epoch, then sequence (Txn does not order).
func (v Version) Less(o Version) bool {
	return v.Epoch < o.Epoch || (v.Epoch == o.Epoch && v.Seq < o.Seq)
}

// Change is one ref's new value inside a replicated transaction; an empty
// or zero OID deletes it.
type Change struct {
	Repo string `json:"repo"`
	Name string `json:"name"`
	OID  string `json:"oid"`
}

// Snapshot is a partition's whole state on one replica.
type Snapshot struct {
	Partition int      `json:"partition"`
	Version   Version  `json:"version"`
	Refs      []Change `json:"refs"`
}
