// Package pktline reads and writes Git's pkt-line framing and the
// side-band-64k multiplexing that Git's smart protocols carry inside it.
//
// # What a pkt-line is
//
// Every message of Git's smart HTTP, ssh and git:// protocols is framed as a
// pkt-line: four lowercase-or-uppercase hex digits giving the length of the
// whole line (the four digits included), then the payload. "0009done\n" is
// the payload "done\n". The largest line is 65520 bytes (LargePacketMax), so
// the largest payload is 65516 bytes.
//
// Lengths 0000, 0001 and 0002 carry no payload and are control packets:
//
//   - 0000 flush-pkt: the end of a message or a section (protocol v0 and v2);
//   - 0001 delim-pkt: separates sections of one message (protocol v2);
//   - 0002 response-end-pkt: the end of a response (protocol v2, stateless).
//
// Lengths 0003 and 0004..: 0003 is malformed (shorter than its own header);
// 0004 is an empty data packet, which Git never sends but accepts. The
// Reader refuses 0003, lengths over 65520 and any non-hex digit with an error
// wrapping ErrMalformed, and a stream that ends inside a packet with one
// wrapping ErrTruncated.
//
// A data packet whose payload starts with "ERR " is an error the peer sends
// instead of what you asked for (gitprotocol-pack.txt: "An error packet is a
// special pkt-line that contains an error string"). Reader.ReadPacket returns
// it as an *ErrPacket error so the caller sees it as an error.
//
// # Side band
//
// Once a client has asked for side-band-64k, the pack an upload-pack sends
// (and the report-status a receive-pack sends) travels in pkt-lines whose
// first payload byte is a band number: 1 carries data, 2 progress text the
// client prints to stderr, 3 a fatal error after which the stream ends. So a
// band-1 packet carries at most 65515 bytes of data. SidebandWriter splits a
// stream into such packets; SidebandReader demultiplexes them.
//
// # Caveats
//
// A Reader's returned payload aliases its buffer and is valid only until the
// next read: copy what you keep. Length checks are the only bound on memory:
// a Reader never holds more than one packet (65520 bytes).
package pktline
