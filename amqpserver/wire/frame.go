package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// ProtocolHeader is what a client sends first, and what the server answers
// with before closing when it gets anything else.
var ProtocolHeader = []byte("AMQP\x00\x00\x09\x01")

// FrameOverhead is the size of a frame without its payload: type, channel,
// size and the frame-end octet.
const FrameOverhead = 8

// DefaultMaxFrameSize is the frame-max a new Reader enforces until
// SetMaxFrameSize is called (RabbitMQ's default frame_max, 128 KiB).
const DefaultMaxFrameSize = 128 * 1024

// Frame is one AMQP frame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// Reader reads frames from a connection. It is not safe for concurrent use:
// each connection has one reader goroutine.
type Reader struct {
	br       *bufio.Reader
	maxFrame uint32
	hdr      [7]byte
}

// NewReader returns a Reader buffering bufSize bytes of r (bufio's default if
// bufSize <= 0), enforcing DefaultMaxFrameSize.
func NewReader(r io.Reader, bufSize int) *Reader {
	if bufSize <= 0 {
		bufSize = 4096
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize), maxFrame: DefaultMaxFrameSize}
}

// SetMaxFrameSize sets the largest frame accepted, counted as in the
// frame-max of connection.tune: payload plus FrameOverhead. Zero, which the
// spec uses for "no limit", restores DefaultMaxFrameSize instead: the server
// always bounds what a peer can make it allocate. Values below FrameMinSize
// are raised to it, which every peer must accept.
func (r *Reader) SetMaxFrameSize(n uint32) {
	switch {
	case n == 0:
		n = DefaultMaxFrameSize
	case n < FrameMinSize:
		n = FrameMinSize
	}
	r.maxFrame = n
}

// FrameBuffered reports whether a whole frame has already been read from
// the peer, so that the next ReadFrame returns without waiting for it.
func (r *Reader) FrameBuffered() bool {
	n := r.br.Buffered()
	if n < len(r.hdr) {
		return false
	}
	h, _ := r.br.Peek(len(r.hdr)) // buffered: Peek does not read
	return uint64(n) >= uint64(binary.BigEndian.Uint32(h[3:]))+FrameOverhead
}

// Skip reads and drops everything the peer sends until the stream ends
// (io.EOF) or fails, for a connection that is closing.
func (r *Reader) Skip() error {
	if _, err := io.Copy(io.Discard, r.br); err != nil {
		return err
	}
	return io.EOF
}

// MaxFrameSize returns the frame-max being enforced.
func (r *Reader) MaxFrameSize() uint32 { return r.maxFrame }

// ReadProtocolHeader reads the 8-byte protocol header a client opens with.
// Anything but ProtocolHeader gives an error wrapping ErrProtocolHeader: the
// server then writes ProtocolHeader and closes the socket, as the spec says.
func (r *Reader) ReadProtocolHeader() error {
	var h [8]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return err
	}
	if !bytes.Equal(h[:], ProtocolHeader) {
		return fmt.Errorf("%w: got %q", ErrProtocolHeader, h[:])
	}
	return nil
}

// ReadFrame reads the next frame. The payload is a fresh slice that the
// caller may keep (a heartbeat's payload is nil). Errors wrapping ErrFrame
// (ErrFrameTooLarge, ErrBadFrameEnd, ErrUnknownFrameType) call for
// 501 FRAME_ERROR; the size is checked before anything is allocated. Other
// errors come from the underlying reader; a stream ending in the middle of a
// frame gives io.ErrUnexpectedEOF and one ending between frames io.EOF.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: r.hdr[0], Channel: binary.BigEndian.Uint16(r.hdr[1:])}
	size := binary.BigEndian.Uint32(r.hdr[3:])
	switch f.Type {
	case FrameMethod, FrameHeader, FrameBody, FrameHeartbeat:
	default:
		return Frame{}, fmt.Errorf("%w %d on channel %d", ErrUnknownFrameType, f.Type, f.Channel)
	}
	if uint64(size)+FrameOverhead > uint64(r.maxFrame) {
		return Frame{}, fmt.Errorf("%w: %d bytes of payload with frame-max %d", ErrFrameTooLarge, size, r.maxFrame)
	}
	if size > 0 {
		f.Payload = make([]byte, size)
		if _, err := io.ReadFull(r.br, f.Payload); err != nil {
			return Frame{}, unexpectedEOF(err)
		}
	}
	end, err := r.br.ReadByte()
	if err != nil {
		return Frame{}, unexpectedEOF(err)
	}
	if end != FrameEnd {
		return Frame{}, fmt.Errorf("%w: got %#02x after a type %d frame on channel %d", ErrBadFrameEnd, end, f.Type, f.Channel)
	}
	return f, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
