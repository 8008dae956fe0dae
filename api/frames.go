package api

import (
	"bufio"

	"fmt"
	"io"
	"strconv"
	"strings"
)

// Batch routes. Bodies of batch PUT requests and batch GET replies are
// sequences of frames:
//
//	<oid> <size>\n<size bytes>     an object
//	<oid> -1 <code>\n               an object that could not be returned
//
// so `printf '%s %d\n' "$OID" "$SIZE"; cat file` builds one by hand.
const (
	PathBatchHas     = "/v1/objects:has"            // POST {"oids":[...]} -> {"present":[...],"missing":[...]}
	PathBatchGet     = "/v1/objects:get"            // POST {"oids":[...]} -> frames
	PathBatchPut     = "/v1/objects:put"            // POST frames -> BatchPutReply
	PathReplicaBatch = "/internal/v1/replica-batch" // POST frames -> []ReplicaBatchResult
	PathReplicaHas   = "/internal/v1/replica-has"   // POST {"oids":[...]} -> {"present":[bool...]}
	PathReplicaGet   = "/internal/v1/replica-get"   // POST {"oids":[...]} -> frames of local copies
)

// Limits of one batch request.
const (
	MaxBatchObjects = 10000
	MaxBatchBytes   = 64 << 20
)

// OIDList is the body of batch has/get requests.
type OIDList struct {
	OIDs []string `json:"oids"`
}

// HasReply answers a batch has: the OIDs that exist and those that do not,
// each at the requested consistency; Unknown lists OIDs whose replicas did
// not answer enough to tell.
type HasReply struct {
	Present []string `json:"present"`
	Missing []string `json:"missing"`
	Unknown []string `json:"unknown,omitempty"`
}

// BatchPutItem is one object's outcome in a batch PUT.
type BatchPutItem struct {
	OID     string       `json:"oid"`
	Created bool         `json:"created"`
	Acked   []string     `json:"acked,omitempty"`
	Error   *ErrorDetail `json:"error,omitempty"`
}

// BatchPutReply answers a batch PUT: one item per object, in request order.
type BatchPutReply struct {
	Stored int            `json:"stored"`
	Failed int            `json:"failed"`
	Items  []BatchPutItem `json:"items"`
}

// ReplicaBatchResult is one object's outcome on one replica.
type ReplicaBatchResult struct {
	Created bool   `json:"created"`
	Code    string `json:"code,omitempty"`
}

// WriteFrame writes one object frame.
func WriteFrame(w io.Writer, oid OID, data []byte) error {
	if _, err := fmt.Fprintf(w, "%s %d\n", oid, len(data)); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// WriteMissingFrame writes the frame of an object that could not be returned.
func WriteMissingFrame(w io.Writer, oid OID, code string) error {
	_, err := fmt.Fprintf(w, "%s -1 %s\n", oid, code)
	return err
}

// ReadFrame reads one frame. It returns io.EOF at a clean end; data is nil
// and code set for a missing-object frame. Objects above max bytes fail.
func ReadFrame(r *bufio.Reader, max int64) (oid OID, data []byte, code string, err error) {
	line, err := r.ReadString('\n')
	if err == io.EOF && line == "" {
		return OID{}, nil, "", io.EOF
	}
	if err != nil {
		return OID{}, nil, "", fmt.Errorf("%w: frame header: %v", ErrBadRequest, err)
	}
	if len(line) > 200 {
		return OID{}, nil, "", fmt.Errorf("%w: frame header too long", ErrBadRequest)
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return OID{}, nil, "", fmt.Errorf("%w: frame header %q, want \"<oid> <size>\"", ErrBadRequest, line)
	}
	if oid, err = ParseOID(fields[0]); err != nil {
		return OID{}, nil, "", err
	}
	size, err := strconv.ParseInt(fields[1], 10, 64)
	switch {
	case err != nil:
		return OID{}, nil, "", fmt.Errorf("%w: frame size %q", ErrBadRequest, fields[1])
	case size == -1 && len(fields) == 3:
		return oid, nil, fields[2], nil
	case size < 0:
		return OID{}, nil, "", fmt.Errorf("%w: frame size %d", ErrBadRequest, size)
	case size > max:
		return OID{}, nil, "", fmt.Errorf("%w: %s is %d bytes, the batch limit per object is %d", ErrTooLarge, oid, size, max)
	}
	data = make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return OID{}, nil, "", fmt.Errorf("%w: frame of %s ends early: %v", ErrBadRequest, oid, err)
	}
	return oid, data, "", nil
}
