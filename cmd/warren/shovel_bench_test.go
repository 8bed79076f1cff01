package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkShovelMove moves b.N persistent 1 KB messages between two
// durable queues of one Warren with on-confirm and prefetch 1000: once
// with a shovel (through the core, no sockets) and, as the baseline in
// the same run, with an amqp091-go client doing what a shovel does over
// AMQP (consume with manual ack, publish with confirms, ack each message
// once its confirm arrived). Compare the two ns/op.
func BenchmarkShovelMove(b *testing.B) {
	for _, how := range []string{"shovel", "amqp-client"} {
		b.Run(how, func(b *testing.B) {
			inst := startWarren(b, "")
			url := amqpURL(inst)
			declareQueue(b, url, "bench-src", nil)
			declareQueue(b, url, "bench-dst", nil)
			body := make([]byte, 1024)
			publishN(b, url, "bench-src", "", b.N, func(_ int, p *amqp.Publishing) { p.Body = body })
			b.ResetTimer()
			if how == "shovel" {
				shovelPut(newMgmtClient(b, inst), "/", "bench", map[string]any{
					"src-uri": "amqp://", "src-queue": "bench-src", "dest-uri": "amqp://", "dest-queue": "bench-dst", "src-prefetch-count": 1000,
				})
				eventually(b, 10*time.Minute, "every message moved", func() bool { return queueLen(b, url, "bench-dst") == b.N })
			} else {
				clientShovel(b, url, b.N) // returns when every message is confirmed and acked
			}
			b.StopTimer()
		})
	}
}

// clientShovel is the baseline: a shovel written as an AMQP client.
func clientShovel(b *testing.B, url string, n int) {
	conn, src := dialURL(b, url)
	defer conn.Close()
	dst, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
		return
	}
	if err := dst.Confirm(false); err != nil {
		b.Fatal(err)
		return
	}
	src.Qos(1000, 0, false)
	ds, err := src.Consume("bench-src", "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
		return
	}
	confirms := dst.NotifyPublish(make(chan amqp.Confirmation, 1000))
	var tags []uint64 // source tags in publish order; confirms come in order
	moved := 0
	ctx := context.Background()
	for moved < n {
		select {
		case d, ok := <-ds:
			if !ok {
				b.Fatal("the source channel closed")
				return
			}
			p := amqp.Publishing{DeliveryMode: d.DeliveryMode, MessageId: d.MessageId, Body: d.Body}
			if err := dst.PublishWithContext(ctx, "", "bench-dst", false, false, p); err != nil {
				b.Fatal(fmt.Errorf("publish: %w", err))
				return
			}
			tags = append(tags, d.DeliveryTag)
		case c := <-confirms:
			tag := tags[c.DeliveryTag-1]
			if err := src.Ack(tag, false); err != nil {
				b.Fatal(err)
				return
			}
			moved++
		}
	}
}
