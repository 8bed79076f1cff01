package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/warrenmq/warren/mapping"
)

// AppendFrame appends a whole frame carrying payload.
func AppendFrame(dst []byte, typ uint8, ch uint16, payload []byte) []byte {
	dst = append(dst, typ, byte(ch>>8), byte(ch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return append(dst, FrameEnd)
}

// beginFrame appends a frame header with a zero size to patch in endFrame.
func beginFrame(dst []byte, typ uint8, ch uint16) []byte {
	return append(dst, typ, byte(ch>>8), byte(ch), 0, 0, 0, 0)
}

// endFrame patches the size of the frame that starts at dst[start] and
// appends the frame end.
func endFrame(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - 7
	if uint64(n) > math.MaxUint32 {
		return dst[:start], fmt.Errorf("%w: frame payload of %d bytes", ErrUnencodable, n)
	}
	binary.BigEndian.PutUint32(dst[start+3:], uint32(n))
	return append(dst, FrameEnd), nil
}

// AppendMethodFrame appends a method frame holding m, encoded in place. On
// error dst is returned unchanged.
func AppendMethodFrame(dst []byte, ch uint16, m Method) ([]byte, error) {
	start := len(dst)
	out, err := m.Append(beginFrame(dst, FrameMethod, ch))
	if err != nil {
		return dst[:start], fmt.Errorf("%s: %w", m.Name(), err)
	}
	return endFrame(out, start)
}

// AppendHeaderFrame appends a content header frame: class id, weight 0, body
// size and properties (see mapping.AppendProperties for which properties are
// written). On error dst is returned unchanged.
func AppendHeaderFrame(dst []byte, ch uint16, classID uint16, bodySize uint64, p *mapping.Properties) ([]byte, error) {
	start := len(dst)
	out := beginFrame(dst, FrameHeader, ch)
	out = binary.BigEndian.AppendUint16(out, classID)
	out = append(out, 0, 0) // weight
	out = binary.BigEndian.AppendUint64(out, bodySize)
	out, err := mapping.AppendProperties(out, p)
	if err != nil {
		return dst[:start], fmt.Errorf("%w: content header: %w", ErrUnencodable, err)
	}
	return endFrame(out, start)
}

// AppendBodyFrames appends body as body frames of at most frameMax bytes
// each, FrameOverhead included. An empty body appends nothing. A frameMax of
// 0 (no limit) puts the body in one frame; values below FrameMinSize are
// raised to it.
func AppendBodyFrames(dst []byte, ch uint16, body []byte, frameMax uint32) []byte {
	chunk := len(body)
	if frameMax != 0 {
		if frameMax < FrameMinSize {
			frameMax = FrameMinSize
		}
		chunk = min(chunk, int(frameMax-FrameOverhead))
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		dst = AppendFrame(dst, FrameBody, ch, body[:n])
		body = body[n:]
	}
	return dst
}

// AppendHeartbeat appends a heartbeat frame (type 8, channel 0, empty).
func AppendHeartbeat(dst []byte) []byte {
	return append(dst, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}
