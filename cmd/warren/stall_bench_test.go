package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkSmallConfirmUnderLargeLoad measures issue 12's scenario: while
// three channels publish 15 MiB persistent messages into one durable
// queue (drained by a consumer so memory stays flat), one op is a 2-byte
// confirmed persistent publish to another durable queue, from publish to
// confirm. It reports the median and worst confirm latency and the worst
// GET /api/queues answer time seen during the run. WARREN_BENCH_SYNC
// sets --sync (default always).
//
//	go test -run '^$' -bench SmallConfirmUnderLargeLoad -benchtime 100x ./cmd/warren
func BenchmarkSmallConfirmUnderLargeLoad(b *testing.B) {
	inst := startWarrenWith(b, "", func(c *Config) {
		if s := os.Getenv("WARREN_BENCH_SYNC"); s != "" {
			c.Sync = s
		}
	})
	url := amqpURL(inst)
	declareDurable(b, url, "bench-big", "bench-small")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	body := make([]byte, 15<<20)
	for range 3 {
		conn, ch := dialChannel(b, url)
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if ch.PublishWithContext(context.Background(), "", "bench-big", false, false,
					amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}) != nil {
					return
				}
			}
		}()
	}
	drain, dch := dialChannel(b, url)
	defer drain.Close()
	dch.Qos(2, 0, false)
	deliveries, err := dch.Consume("bench-big", "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for d := range deliveries {
			d.Ack(false)
		}
	}()

	// The management API, asked over and over during the run.
	var apiWorst time.Duration
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		hc := &http.Client{Timeout: 30 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", "http://"+inst.HTTPAddr()+"/api/queues", nil)
			req.SetBasicAuth("guest", "guest")
			at := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			apiWorst = max(apiWorst, time.Since(at))
		}
	}()

	conn, ch := dialChannel(b, url)
	defer conn.Close()
	ch.Confirm(false)
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	time.Sleep(time.Second) // let the large publishes fill the store's in-flight budget
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		at := time.Now()
		if err := ch.PublishWithContext(context.Background(), "", "bench-small", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("hi")}); err != nil {
			b.Fatal(err)
		}
		select {
		case c := <-confirms:
			if !c.Ack {
				b.Fatal("nack")
			}
		case <-time.After(60 * time.Second):
			b.Fatal("no confirm within 60 s")
		}
		lat = append(lat, time.Since(at))
	}
	b.StopTimer()
	close(stop)
	<-apiDone
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(apiWorst.Microseconds())/1000, "api-max-ms")
	drain.Close()
	conn.Close()
	wg.Wait()
}
