package conformance

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// RabbitMQ acknowledges publishes that are confirmed together with one
// basic.ack multiple=true. A burst written in one go must come back as
// fewer acks than messages, covering every sequence number exactly once.
func TestConfirmsCoalesced(t *testing.T) {
	f := newFixture(t)
	rc := openedRaw(f)            // with channel 1 open
	rc.send(1, 85, 10, []byte{0}) // confirm.select
	rc.expectMethod(85, 11)
	_, ch := f.connChan()
	q := f.queue(ch)

	const n = 200
	var burst bytes.Buffer
	for range n {
		burst.Write(frameBytes(1, 1, methodPayload(60, 40, publishArgs(q)), 0xCE))
		burst.Write(frameBytes(2, 1, headerPayload(60, 3), 0xCE))
		burst.Write(frameBytes(3, 1, []byte("abc"), 0xCE))
	}
	rc.write(burst.Bytes())

	acked := uint64(0)
	frames, multiples := 0, 0
	for acked < n {
		fr := rc.expectMethod(60, 80)
		p := fr.payload[4:]
		tag := binary.BigEndian.Uint64(p)
		multiple := p[8]&1 != 0
		frames++
		switch {
		case multiple && tag > acked:
			multiples++
			acked = tag
		case !multiple && tag == acked+1:
			acked = tag
		default:
			t.Fatalf("ack %d multiple=%v after everything up to %d was acked: out of order or repeated", tag, multiple, acked)
		}
	}
	t.Logf("%d publishes confirmed by %d basic.ack frames (%d with multiple=true)", n, frames, multiples)
	if frames >= n || multiples == 0 {
		t.Errorf("%d publishes confirmed by %d basic.ack frames, %d of them multiple: want them coalesced", n, frames, multiples)
	}
	if acked != n {
		t.Errorf("acked up to %d, want %d", acked, n)
	}
	if got, _ := f.queueCounts(f.dial(), q); got != n {
		t.Errorf("queue holds %d, want %d", got, n)
	}
}
