package main

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkAMQPTransport publishes 1 KiB messages with confirms (windows
// of 100) and consumes them, over TCP and over /ws/amqp on one Warren, so
// the WebSocket's cost reads as a ratio to TCP measured in the same run:
//
//	go test -run XXX -bench AMQPTransport ./cmd/warren/
func BenchmarkAMQPTransport(b *testing.B) {
	inst := startWarren(b, "")
	for _, tr := range []string{"tcp", "websocket"} {
		b.Run(tr, func(b *testing.B) {
			var conn *amqp.Connection
			if tr == "tcp" {
				c, err := amqp.Dial(amqpURL(inst))
				if err != nil {
					b.Fatal(err)
				}
				conn = c
			} else {
				conn = dialAMQPWS(b, inst, false)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Confirm(false); err != nil {
				b.Fatal(err)
			}
			deliveries, err := ch.Consume(q.Name, "", true, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 1024)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			ctx := context.Background()
			for sent := 0; sent < b.N; {
				window := min(100, b.N-sent)
				dcs := make([]*amqp.DeferredConfirmation, 0, window)
				for range window {
					dc, err := ch.PublishWithDeferredConfirm("", q.Name, false, false, amqp.Publishing{Body: body})
					if err != nil {
						b.Fatal(err)
					}
					dcs = append(dcs, dc)
				}
				for _, dc := range dcs {
					if ok, err := dc.WaitContext(ctx); !ok || err != nil {
						b.Fatalf("confirm: %v %v", ok, err)
					}
				}
				for range window {
					<-deliveries
				}
				sent += window
			}
		})
	}
}
