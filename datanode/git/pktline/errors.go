package pktline

import (
	"errors"
	"fmt"
)

// Errors returned by the Reader, wrapped with details; test with errors.Is.
var (
	// ErrMalformed is a length prefix that is not four hex digits, is 0003,
	// or exceeds LargePacketMax.
	ErrMalformed = errors.New("pktline: malformed packet")
	// ErrTruncated is a stream that ended inside a packet.
	ErrTruncated = errors.New("pktline: truncated packet")
	// ErrTooLong is a payload given to a Writer that does not fit one packet.
	ErrTooLong = errors.New("pktline: payload too long")
	// ErrBadBand is a side-band packet with no band byte or an unknown band.
	ErrBadBand = errors.New("pktline: bad side-band packet")
)

// ErrPacket is an "ERR <message>" packet sent by the peer.
type ErrPacket struct {
	Message string
}

func (e *ErrPacket) Error() string { return fmt.Sprintf("remote error: %s", e.Message) }

// RemoteError is band-3 text received through a SidebandReader: the remote
// reported a fatal error and ended the stream.
type RemoteError struct {
	Message string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("remote fatal error: %s", e.Message) }
