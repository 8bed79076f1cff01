package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// tune-ok with channel_max or frame_max 0 ("no limit") after the server
// offered a limit is refused, as RabbitMQ does: the client may only lower
// what the server proposed. Before connection.open-ok the refusal is a
// closed socket without a word (the spec's rule for handshake failures,
// which RabbitMQ follows).
func TestTuneOkZeroRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		channelMax uint16
		zeroFrame  bool
	}{
		{name: "ChannelMax0", channelMax: 0},
		{name: "FrameMax0", channelMax: 1, zeroFrame: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rc := f.rawDial()
			_, frameMax := rc.plainStartOk()
			if tc.zeroFrame {
				frameMax = 0
			}
			rc.tuneOkOpen(tc.channelMax, frameMax)
			for {
				fr, err := rc.read(10 * time.Second)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("socket still open 10s after the refused tune-ok")
				}
				if err != nil {
					return // refused: the socket was closed
				}
				if c, m := fr.method(); c == 10 && m == 41 {
					t.Fatalf("tune-ok with channel_max %d frame_max %d was accepted (connection.open-ok)", tc.channelMax, frameMax)
				}
			}
		})
	}
}

// plainStartOk answers connection.start with a PLAIN login and returns
// what connection.tune offers.
func (rc *rawConn) plainStartOk() (channelMax uint16, frameMax uint32) {
	rc.t.Helper()
	rc.expectMethod(10, 10)
	var args bytes.Buffer
	_ = binary.Write(&args, binary.BigEndian, uint32(0))
	shortstr(&args, "PLAIN")
	longstr(&args, "\x00"+rc.user+"\x00"+rc.pass)
	shortstr(&args, "en_US")
	rc.send(0, 10, 11, args.Bytes())
	tune := rc.expectMethod(10, 30)
	return binary.BigEndian.Uint16(tune.payload[4:]), binary.BigEndian.Uint32(tune.payload[6:])
}

// tuneOkOpen sends tune-ok with the given limits (no heartbeat) and
// connection.open, without waiting for an answer: the server may refuse.
func (rc *rawConn) tuneOkOpen(channelMax uint16, frameMax uint32) {
	rc.t.Helper()
	var to bytes.Buffer
	_ = binary.Write(&to, binary.BigEndian, channelMax)
	_ = binary.Write(&to, binary.BigEndian, frameMax)
	_ = binary.Write(&to, binary.BigEndian, uint16(0))
	rc.send(0, 10, 31, to.Bytes())
	var op bytes.Buffer
	shortstr(&op, rc.vh)
	shortstr(&op, "")
	op.WriteByte(0)
	rc.sendNoFail(frameBytes(1, 0, methodPayload(10, 40, op.Bytes()), 0xCE))
}
