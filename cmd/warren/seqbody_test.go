package main

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message bodies that carry their own identity: a header naming the
// publisher and its sequence number, then filler derived from the sequence
// number, so that a consumer can check every byte of a message without the
// test keeping any per-message state (the backlog tests publish up to ten
// million messages).
//
//	P03:000000012345|ijklmnop...
const seqHeaderLen = 17

// seqBody writes publisher p's message i into buf (its length is the body
// size, at least seqHeaderLen) and returns buf.
func seqBody(buf []byte, p, i int) []byte {
	_ = fmt.Appendf(buf[:0], "P%02d:%012d|", p, i) // in place: buf has room
	for k := seqHeaderLen; k < len(buf); k++ {
		buf[k] = byte('a' + (i+k)%26)
	}
	return buf
}

// parseSeqBody returns the publisher and sequence number of a body written
// by seqBody, checking every byte of it against what seqBody writes;
// scratch is reused to regenerate the body.
func parseSeqBody(body []byte, scratch *[]byte) (p, i int, err error) {
	if len(body) < seqHeaderLen {
		return 0, 0, fmt.Errorf("body of %d bytes, shorter than its header", len(body))
	}
	if _, err := fmt.Sscanf(string(body[:seqHeaderLen]), "P%02d:%012d|", &p, &i); err != nil {
		return 0, 0, fmt.Errorf("body header %q: %v", body[:seqHeaderLen], err)
	}
	if cap(*scratch) < len(body) {
		*scratch = make([]byte, len(body))
	}
	if want := seqBody((*scratch)[:len(body)], p, i); !bytes.Equal(body, want) {
		return p, i, fmt.Errorf("body of P%02d:%d is corrupt", p, i)
	}
	return p, i, nil
}

// seqFill is one fill of a queue by several confirm-mode publishers, each
// publishing its own numbered sequence 0..n-1 of seqBody messages.
type seqFill struct {
	url        string
	queue      string
	mode       uint8 // amqp.Persistent or amqp.Transient
	size       int   // body bytes
	publishers int
	window     int           // unconfirmed messages per publisher
	confirmed  *atomic.Int64 // counts acks as they arrive (may be nil)
}

// perPublisher is how many of total messages publisher p sends.
func (f seqFill) perPublisher(total, p int) int {
	n := total / f.publishers
	if p == f.publishers-1 {
		n = total - n*(f.publishers-1)
	}
	return n
}

// fillStall is how long a fill may go without a confirm before run gives
// up on it.
const fillStall = 2 * time.Minute

// run publishes total messages and returns when every one is confirmed,
// or with an error when a publisher fails or no confirm came for
// fillStall (a broker that blocks publishers in its memory alarm, with
// the client stuck writing into a socket nobody reads, ends up there).
func (f seqFill) run(total int) error {
	if f.confirmed == nil {
		f.confirmed = new(atomic.Int64)
	}
	var blocked atomic.Pointer[string] // connection.blocked reason, while blocked
	errs := make(chan error, f.publishers)
	for p := range f.publishers {
		go func() { errs <- f.publish(p, f.perPublisher(total, p), &blocked) }()
	}
	last, lastAt := f.confirmed.Load(), time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for left := f.publishers; left > 0; {
		select {
		case err := <-errs:
			if err != nil {
				return err
			}
			left--
		case <-tick.C:
			if n := f.confirmed.Load(); n != last {
				last, lastAt = n, time.Now()
			} else if time.Since(lastAt) > fillStall {
				if r := blocked.Load(); r != nil {
					return fmt.Errorf("no confirm for %v after %d of %d into %s: Warren blocks publishers (connection.blocked %q)", fillStall, n, total, f.queue, *r)
				}
				return fmt.Errorf("no confirm for %v after %d of %d into %s", fillStall, n, total, f.queue)
			}
		}
	}
	return nil
}

func (f seqFill) publish(p, n int, blocked *atomic.Pointer[string]) error {
	conn, err := amqp.Dial(f.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		for b := range conn.NotifyBlocked(make(chan amqp.Blocking, 4)) {
			if b.Active {
				blocked.Store(&b.Reason)
			} else {
				blocked.Store(nil)
			}
		}
	}()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, f.window))
	slots := make(chan struct{}, f.window)
	done := make(chan error, 1)
	go func() {
		nacks := 0
		for i := 0; i < n; i++ {
			c, ok := <-confirms
			if !ok {
				done <- fmt.Errorf("publisher %d: channel closed after %d confirms", p, i)
				return
			}
			if !c.Ack {
				nacks++
			} else {
				f.confirmed.Add(1)
			}
			<-slots
		}
		if nacks > 0 {
			done <- fmt.Errorf("publisher %d: %d nacks", p, nacks)
			return
		}
		done <- nil
	}()
	// The client writes the frames before PublishWithContext returns, so
	// one buffer serves every message.
	buf := make([]byte, f.size)
	for i := range n {
		slots <- struct{}{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := ch.PublishWithContext(ctx, "", f.queue, false, false, amqp.Publishing{
			DeliveryMode: f.mode, Body: seqBody(buf, p, i),
		})
		cancel()
		if err != nil {
			return fmt.Errorf("publisher %d, message %d: %v", p, i, err)
		}
	}
	return <-done // run gives up when confirms stop coming
}
