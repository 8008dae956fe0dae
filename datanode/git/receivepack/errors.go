package receivepack

import "errors"

// Errors Serve returns (wrapped) when it cannot finish the protocol; test
// with errors.Is. A push that is refused (a bad pack, a stale ref) is not an
// error: it is reported to the client and described in Result.
var (
	// ErrProtocol is a request that is not receive-pack's v0 protocol: a
	// malformed command, too many commands or options, a stream cut short.
	// The client gets an ERR packet.
	ErrProtocol = errors.New("receivepack: protocol error")
	// ErrUnsupported is a request for something this server does not do:
	// shallow pushes, push certificates, SHA-256.
	ErrUnsupported = errors.New("receivepack: not supported")
	// ErrPackTooLarge is a pack over Limits.MaxPackBytes; it is reported as
	// the unpack error.
	ErrPackTooLarge = errors.New("pack over the size limit")
)
