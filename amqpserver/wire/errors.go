package wire

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Each of those a peer can cause wraps one
// of ErrFrame, ErrSyntax or ErrNotImplemented, which tell the server which
// reply code to close the connection with (see ReplyCodeFor); before the
// handshake there is ErrProtocolHeader, answered by writing ProtocolHeader.
var (
	// ErrFrame is a malformed frame: reply 501 FRAME_ERROR.
	ErrFrame = errors.New("frame error")
	// ErrFrameTooLarge is a frame larger than the negotiated frame-max.
	ErrFrameTooLarge = fmt.Errorf("%w: frame too large", ErrFrame)
	// ErrBadFrameEnd is a frame not followed by the frame-end octet 0xCE.
	ErrBadFrameEnd = fmt.Errorf("%w: bad frame end", ErrFrame)
	// ErrUnknownFrameType is a frame type other than 1, 2, 3 or 8.
	ErrUnknownFrameType = fmt.Errorf("%w: unknown frame type", ErrFrame)

	// ErrProtocolHeader is a connection that does not open with
	// ProtocolHeader (another protocol or AMQP version).
	ErrProtocolHeader = errors.New("unsupported protocol header")

	// ErrSyntax is a method or content header whose arguments do not parse:
	// reply 502 SYNTAX_ERROR.
	ErrSyntax = errors.New("syntax error")

	// ErrNotImplemented is a class or method id the specification does not
	// define: reply 540 NOT_IMPLEMENTED.
	ErrNotImplemented = errors.New("not implemented")

	// ErrUnencodable is a value that cannot be written, such as a shortstr
	// longer than 255 bytes. It is the caller's bug, not the peer's.
	ErrUnencodable = errors.New("cannot encode")
)

// ReplyCodeFor returns the reply code with which to close the connection
// after err from this package, and false if err is none of its errors (an
// I/O error, for example, after which there is nobody to reply to).
func ReplyCodeFor(err error) (uint16, bool) {
	switch {
	case errors.Is(err, ErrFrame):
		return FrameError, true
	case errors.Is(err, ErrSyntax):
		return SyntaxError, true
	case errors.Is(err, ErrNotImplemented):
		return NotImplemented, true
	case errors.Is(err, ErrUnencodable):
		return InternalError, true
	}
	return 0, false
}
