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
	_, ch := f.connChan()
	q := f.queue(ch)
	const n = 200
	frames, multiples := confirmBurst(t, f, q, n, false)
	if frames >= n || multiples == 0 {
		t.Errorf("%d publishes confirmed by %d basic.ack frames, %d of them multiple: want them coalesced", n, frames, multiples)
	}
	if got, _ := f.queueCounts(f.dial(), q); got != n {
		t.Errorf("queue holds %d, want %d", got, n)
	}
}

// Persistent messages on a durable queue are confirmed once stored, from
// the store's callbacks: however they are grouped, every publish is
// confirmed once and in order.
func TestConfirmsCoalescedDurable(t *testing.T) {
	f := newFixture(t)
	_, ch := f.connChan()
	q := f.name("q")
	f.declareQueue(ch, q, true, false, false, nil)
	const n = 200
	confirmBurst(t, f, q, n, true)
	if got, _ := f.queueCounts(f.dial(), q); got != n {
		t.Errorf("queue holds %d, want %d", got, n)
	}
}

// confirmBurst publishes n messages to queue in one write on a raw
// connection in confirm mode and reads the acks, failing the test unless
// they confirm 1..n in order, each once; it returns how many ack frames
// came and how many had multiple=true.
func confirmBurst(t *testing.T, f *fixture, queue string, n uint64, persistent bool) (frames, multiples int) {
	t.Helper()
	rc := openedRaw(f)            // with channel 1 open
	rc.send(1, 85, 10, []byte{0}) // confirm.select
	rc.expectMethod(85, 11)
	header := headerPayload(60, 3)
	if persistent {
		// property flags: delivery-mode only, then its octet (2)
		header = append(header[:12:12], 0x10, 0x00, 2)
	}
	var burst bytes.Buffer
	for range n {
		burst.Write(frameBytes(1, 1, methodPayload(60, 40, publishArgs(queue)), 0xCE))
		burst.Write(frameBytes(2, 1, header, 0xCE))
		burst.Write(frameBytes(3, 1, []byte("abc"), 0xCE))
	}
	rc.write(burst.Bytes())

	acked := uint64(0)
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
	return frames, multiples
}
