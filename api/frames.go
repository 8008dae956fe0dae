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
// Between nodes an object frame may carry the copy's stamp (stamp.go) as a
// third field, "<oid> <size> <stamp>\n"; a coordinator ignores a stamp in
// a client's batch PUT and stamps the write itself.
//
// A replica batch (node to node) may also carry an object as the
// sender's encoded store value, "<oid> <size> <stamp> value\n" with size
// the value's length: the coordinator compresses each object once for all
// its replicas, and each replica decodes and verifies it before storing
// it as it came (docs/architecture.md). Nodes that predate this field
// refuse such a frame: every node of a cluster must run a version that
// reads it.
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
	OID     string   `json:"oid"`
	Created bool     `json:"created"`
	Acked   []string `json:"acked,omitempty"`
	// Failed are the replicas that were skipped (DOWN or draining) or
	// refused or timed out. A batch replies once every replica answered,
	// so nothing is pending; Degraded is true when fewer than N acknowledged.
	Failed   []string     `json:"failed,omitempty"`
	Degraded bool         `json:"degraded"`
	Error    *ErrorDetail `json:"error,omitempty"`
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
	// Stamp is the replica's newer stamp when Code is "superseded".
	Stamp Stamp `json:"stamp,omitempty"`
}

// WriteFrame writes one object frame.
func WriteFrame(w io.Writer, oid OID, data []byte) error {
	return writeFrame(w, appendFrameHeader(nil, oid, len(data), 0, false), data)
}

// WriteStampedFrame writes one object frame with its stamp (node to node).
func WriteStampedFrame(w io.Writer, oid OID, data []byte, stamp Stamp) error {
	return writeFrame(w, appendFrameHeader(nil, oid, len(data), stamp, false), data)
}

// WriteValueFrame writes one object frame whose bytes are an encoded
// store value (node to node).
func WriteValueFrame(w io.Writer, oid OID, value []byte, stamp Stamp) error {
	return writeFrame(w, appendFrameHeader(nil, oid, len(value), stamp, true), value)
}

func writeFrame(w io.Writer, header, data []byte) error {
	if _, err := w.Write(header); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// AppendStampedFrame appends to b the frame WriteStampedFrame writes (a stamp
// of 0 is left out, as WriteFrame does), header and bytes.
func AppendStampedFrame(b []byte, oid OID, data []byte, stamp Stamp) []byte {
	return append(appendFrameHeader(b, oid, len(data), stamp, false), data...)
}

// AppendValueFrame appends to b the frame WriteValueFrame writes. A
// coordinator builds a replica's batch body with it in one buffer sized
// up front (MaxFrameHeader per frame): formatting the headers with fmt
// and growing a bytes.Buffer cost a git push about 3 % of its CPU
// (docs/performance.md, "Page faults and a settle scan").
func AppendValueFrame(b []byte, oid OID, value []byte, stamp Stamp) []byte {
	return append(appendFrameHeader(b, oid, len(value), stamp, true), value...)
}

// MaxFrameHeader bounds a frame's header line: the OID's hex, the size,
// the stamp, "value", three spaces and the newline.
const MaxFrameHeader = 64 + 20 + 20 + len(frameValue) + 4

// appendFrameHeader appends the header line "<oid> <size>[ <stamp>[ value]]\n":
// the stamp when it is not 0 or the frame is a value frame, which always
// names it.
func appendFrameHeader(b []byte, oid OID, size int, stamp Stamp, value bool) []byte {
	b = append(b, oid.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(size), 10)
	if stamp != 0 || value {
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(stamp), 10)
	}
	if value {
		b = append(b, ' ')
		b = append(b, frameValue...)
	}
	return append(b, '\n')
}

// frameValue is the fourth header field of a value frame.
const frameValue = "value"

// WriteMissingFrame writes the frame of an object that could not be returned.
func WriteMissingFrame(w io.Writer, oid OID, code string) error {
	_, err := fmt.Fprintf(w, "%s -1 %s\n", oid, code)
	return err
}

// ReadFrame reads one frame. It returns io.EOF at a clean end; data is nil
// and code set for a missing-object frame. Objects above max bytes fail.
func ReadFrame(r *bufio.Reader, max int64) (oid OID, data []byte, code string, err error) {
	f, err := ReadStampedFrame(r, max)
	return f.OID, f.Data, f.Code, err
}

// Frame is one decoded frame.
type Frame struct {
	OID   OID
	Data  []byte
	Code  string // a missing-object frame's code
	Stamp Stamp  // an object frame's stamp, 0 if it carries none
	// Value: Data is the sender's encoded store value of the object, not
	// its bytes (WriteValueFrame).
	Value bool
}

// ReadStampedFrame is ReadFrame that also returns an object frame's stamp.
func ReadStampedFrame(r *bufio.Reader, max int64) (Frame, error) {
	line, err := r.ReadString('\n')
	if err == io.EOF && line == "" {
		return Frame{}, io.EOF
	}
	if err != nil {
		return Frame{}, fmt.Errorf("%w: frame header: %v", ErrBadRequest, err)
	}
	if len(line) > 200 {
		return Frame{}, fmt.Errorf("%w: frame header too long", ErrBadRequest)
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || len(fields) > 4 {
		return Frame{}, fmt.Errorf("%w: frame header %q, want \"<oid> <size>\"", ErrBadRequest, line)
	}
	var f Frame
	if f.OID, err = ParseOID(fields[0]); err != nil {
		return Frame{}, err
	}
	size, err := strconv.ParseInt(fields[1], 10, 64)
	switch {
	case err != nil:
		return Frame{}, fmt.Errorf("%w: frame size %q", ErrBadRequest, fields[1])
	case size == -1 && len(fields) == 3:
		f.Code = fields[2]
		return f, nil
	case size < 0:
		return Frame{}, fmt.Errorf("%w: frame size %d", ErrBadRequest, size)
	case size > max:
		return Frame{}, fmt.Errorf("%w: %s is %d bytes, the batch limit per object is %d", ErrTooLarge, f.OID, size, max)
	}
	if len(fields) >= 3 {
		if f.Stamp, err = ParseStamp(fields[2]); err != nil {
			return Frame{}, err
		}
	}
	if len(fields) == 4 {
		if fields[3] != frameValue {
			return Frame{}, fmt.Errorf("%w: frame header %q: unknown fourth field", ErrBadRequest, line)
		}
		f.Value = true
	}
	f.Data = make([]byte, size)
	if _, err := io.ReadFull(r, f.Data); err != nil {
		return Frame{}, fmt.Errorf("%w: frame of %s ends early: %v", ErrBadRequest, f.OID, err)
	}
	return f, nil
}
