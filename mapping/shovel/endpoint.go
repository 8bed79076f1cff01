package shovel

import (
	"context"

	"github.com/warrenmq/warren/mapping"
)

// inMsg is one message taken from a source.
type inMsg struct {
	tag     uint64
	msg     *mapping.Message // exchange and routing key as received
	attempt int              // deliveries of this message so far, this one included
	redeliv bool
}

// source is where a shovel takes messages from: this broker's core or a
// remote AMQP broker.
type source interface {
	// deliveries yields messages until the source fails or is closed.
	deliveries() <-chan inMsg
	// failed is closed when the source broke; err says why.
	failed() <-chan struct{}
	err() error
	// ack and nack settle one message; safe from any goroutine.
	ack(tag uint64) error
	nack(tag uint64, requeue bool) error
	// length is the number of ready messages in the source queue, for
	// src-delete-after: queue-length.
	length() int
	close()
}

// dest is where a shovel sends messages: this broker's core, a remote
// AMQP broker or an HTTP endpoint.
type dest interface {
	// publish sends m. done, when not nil, is called once, from any
	// goroutine and never while core locks are held by the caller's
	// stack, with ok=true when the destination confirmed the message.
	// publish may block (HTTP concurrency bound); it returns early when
	// ctx ends.
	publish(ctx context.Context, in inMsg, m *mapping.Message, done func(ok bool)) error
	failed() <-chan struct{}
	err() error
	close()
}
