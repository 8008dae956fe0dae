package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/stratum-store/stratum/api/objid"
	"github.com/stratum-store/stratum/api/refdata"
)

// Sentinel errors of the wire contract. Servers map them to a status and a
// code with StatusOf; clients map a code back with ErrorForCode, so callers on
// either side use errors.Is.
var (
	ErrInvalidOID         = objid.ErrInvalid
	ErrDigestMismatch     = objid.ErrDigestMismatch
	ErrCollision          = objid.ErrCollision
	ErrTooLarge           = errors.New("object too large")
	ErrNotFound           = errors.New("object not found")
	ErrQuorumNotReached   = errors.New("quorum not reached")
	ErrInvalidConsistency = errors.New("invalid consistency level")
	ErrBadRequest         = errors.New("bad request")
	ErrStaleRing          = errors.New("stale ring revision")
	ErrStaleGeneration    = errors.New("stale node generation")
	ErrNotReady           = errors.New("node not ready")
	ErrMethodNotAllowed   = errors.New("method not allowed")
	ErrRouteNotFound      = errors.New("no such route")
	ErrInternal           = errors.New("internal error")
	ErrUnknownNode        = errors.New("unknown node")
	ErrUnsafe             = errors.New("unsafe: would leave objects below their replication factor")
	ErrBadState           = errors.New("node state does not allow this")
	ErrPeerUnavailable    = errors.New("peer unavailable (circuit open)")
	ErrBusy               = errors.New("busy: the node is at a limit (requests in flight or request bodies in memory); retry later")
	// ErrRequestTimeout: the request's header or body did not arrive in
	// time (the node's --header-timeout and --min-body-rate); the
	// connection is closed.
	ErrRequestTimeout = errors.New("request timeout: the header or body arrived too slowly")
	// ErrUnauthenticated: the caller did not prove who it is (a
	// node-to-node call without a verified cluster node certificate).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller's token is valid but its scopes do not
	// cover the request.
	ErrForbidden = errors.New("forbidden")
	// ErrUnsupportedMediaType: a JSON route was sent a body whose
	// Content-Type is not application/json.
	ErrUnsupportedMediaType = errors.New("unsupported media type: send Content-Type: application/json")
	// ErrNoSpace: a replica's disk is full; it stores nothing more until it
	// has room and has been restarted (docs/operations.md).
	ErrNoSpace = errors.New("insufficient storage: the disk is full")
	// ErrDeleted: a replica holds a tombstone for the object (node to
	// node; a client sees not_found).
	ErrDeleted = errors.New("object deleted")
	// ErrSuperseded: a replica holds a newer write or delete of the
	// object than the one sent (node to node; X-Stratum-Stamp says which).
	ErrSuperseded = errors.New("superseded by a newer write or delete")

	// Refs (docs/refs.md).
	ErrInvalidRepo    = refdata.ErrInvalidRepo
	ErrInvalidRefName = refdata.ErrInvalidRefName
	ErrRefConflict    = errors.New("ref transaction conflict: an old value did not match")
	ErrMissingObject  = errors.New("a new ref value names an object not stored at quorum")
	ErrNotPrimary     = errors.New("not the partition primary; nothing was applied, retry")
	ErrStaleEpoch     = refdata.ErrStaleEpoch
	ErrOutOfSync      = refdata.ErrOutOfSync
	ErrOutcomeUnknown = errors.New("transaction outcome unknown: it may or may not have been applied")
	ErrNoPartitions   = errors.New("partitions not assigned yet")
)

// errorTable is the single mapping between sentinels, HTTP statuses and codes.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{ErrInvalidOID, http.StatusBadRequest, "invalid_oid"},
	{ErrDigestMismatch, http.StatusBadRequest, "digest_mismatch"},
	{ErrCollision, http.StatusBadRequest, "sha1_collision"},
	{ErrInvalidConsistency, http.StatusBadRequest, "invalid_consistency"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{ErrBusy, http.StatusTooManyRequests, "busy"},
	{ErrRequestTimeout, http.StatusRequestTimeout, "request_timeout"},
	{ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
	{ErrForbidden, http.StatusForbidden, "forbidden"},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{ErrDeleted, http.StatusNotFound, "deleted"},
	{ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrSuperseded, http.StatusConflict, "superseded"},
	{ErrRouteNotFound, http.StatusNotFound, "no_route"},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed"},
	{ErrUnknownNode, http.StatusNotFound, "unknown_node"},
	{ErrUnsafe, http.StatusConflict, "unsafe"},
	{ErrBadState, http.StatusConflict, "bad_state"},
	{ErrPeerUnavailable, http.StatusServiceUnavailable, "peer_unavailable"},
	{ErrStaleRing, http.StatusConflict, "stale_ring"},
	{ErrStaleGeneration, http.StatusConflict, "stale_generation"},
	{ErrQuorumNotReached, http.StatusServiceUnavailable, "quorum_not_reached"},
	{ErrNoSpace, http.StatusInsufficientStorage, "insufficient_storage"},
	{ErrNotReady, http.StatusServiceUnavailable, "not_ready"},
	{ErrInvalidRepo, http.StatusBadRequest, "invalid_repo"},
	{ErrInvalidRefName, http.StatusBadRequest, "invalid_ref_name"},
	{ErrRefConflict, http.StatusConflict, "ref_conflict"},
	{ErrMissingObject, http.StatusUnprocessableEntity, "missing_object"},
	{ErrNotPrimary, http.StatusServiceUnavailable, "not_primary"},
	{ErrStaleEpoch, http.StatusConflict, "stale_epoch"},
	{ErrOutOfSync, http.StatusConflict, "out_of_sync"},
	{ErrOutcomeUnknown, http.StatusServiceUnavailable, "outcome_unknown"},
	{ErrNoPartitions, http.StatusServiceUnavailable, "no_partitions"},
	{ErrInternal, http.StatusInternalServerError, "internal"},
}

// StatusOf returns the HTTP status and error code for err. Errors that wrap
// no sentinel are internal errors.
func StatusOf(err error) (status int, code string) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	return http.StatusInternalServerError, "internal"
}

// ErrorForCode returns the sentinel for a wire code, or ErrInternal.
func ErrorForCode(code string) error {
	for _, e := range errorTable {
		if e.code == code {
			return e.err
		}
	}
	return ErrInternal
}

// ErrorBody is the JSON document of every error reply:
// {"error":{"code":"not_found","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// EncodeError renders err as an ErrorBody and returns it with its status.
func EncodeError(err error) (status int, body []byte) {
	status, code := StatusOf(err)
	body, _ = json.Marshal(ErrorBody{Error: ErrorDetail{Code: code, Message: err.Error()}})
	return status, body
}

// DecodeError turns an error reply back into an error that wraps the
// matching sentinel and keeps the server's message.
func DecodeError(status int, body []byte) error {
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
		return fmt.Errorf("%w: HTTP %d: %.200s", ErrInternal, status, body)
	}
	return &RemoteError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
}

// RemoteError is an error reply received from a stratum node.
type RemoteError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the server's message.
func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel for the code, so errors.Is works.
func (e *RemoteError) Unwrap() error { return ErrorForCode(e.Code) }
