package jsstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkJetStreamCeiling is the bare embedded JetStream doing Warren's
// job for persistent messages, with no AMQP and no routing core: one
// producer publishes 1 KB messages asynchronously to a work-queue stream
// (file storage), one pull consumer fetches them in batches and acks each.
// It is the ceiling Warren's persistent end-to-end rate is compared with.
func BenchmarkJetStreamCeiling(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "CEIL", Subjects: []string{"ceil"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	}); err != nil {
		b.Fatal(err)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, "CEIL", jetstream.ConsumerConfig{
		Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000, AckWait: time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	var got atomic.Int64
	done := make(chan struct{})
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(done)
		for got.Load() < int64(b.N) {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			for m := range batch.Messages() {
				m.Ack()
				got.Add(1)
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		if _, err := s.js.PublishAsync("ceil", body); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	<-done
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
}
