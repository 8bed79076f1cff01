package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkSmallConfirmUnderLargeLoad measures issue 12's scenario: while
// three channels publish 15 MiB persistent messages into one durable
// queue (drained by a consumer so memory stays flat), one op is a 2-byte
// confirmed persistent publish to another durable queue, from publish to
// confirm. It reports the median and worst confirm latency, and the
// median and worst answer times of GET /api/queues and GET /api/overview
// (each asked at least 20 times during the run), next to their medians
// without the load, measured first in the same run. WARREN_BENCH_SYNC
// sets --sync (default always).
//
//	go test -run '^$' -bench SmallConfirmUnderLargeLoad -benchtime 20x -v ./cmd/warren
func BenchmarkSmallConfirmUnderLargeLoad(b *testing.B) {
	inst := startWarrenWith(b, "", func(c *Config) {
		if s := os.Getenv("WARREN_BENCH_SYNC"); s != "" {
			c.Sync = s
		}
	})
	url := amqpURL(inst)
	declareDurable(b, url, "bench-big", "bench-small")
	// The same requests without the load first: the baseline of the
	// figures reported under it.
	idle := newAPITimer(b, "http://"+inst.HTTPAddr())
	for k := range 2 * apiReportSamples {
		idle.get(apiPaths[k%len(apiPaths)])
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	body := make([]byte, 15<<20)
	for range 3 {
		conn, ch := dialURL(b, url)
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
	drain, dch := dialURL(b, url)
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

	// The management API, asked over and over during the run, alternating
	// GET /api/queues and GET /api/overview until each has been asked at
	// least apiReportSamples times and the confirms are measured.
	api := newAPITimer(b, "http://"+inst.HTTPAddr())
	confirmsDone := make(chan struct{})
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		for k := 0; ; k++ {
			select {
			case <-confirmsDone:
				if api.least() >= apiReportSamples {
					return
				}
			default:
			}
			time.Sleep(50 * time.Millisecond)
			if !api.get(apiPaths[k%len(apiPaths)]) {
				return
			}
		}
	}()

	conn, ch := dialURL(b, url)
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
	close(confirmsDone)
	<-apiDone
	close(stop)
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	api.report(idle)
	drain.Close()
	conn.Close()
	wg.Wait()
}

// The management API endpoints BenchmarkSmallConfirmUnderLargeLoad times.
var apiPaths = []string{"/api/queues", "/api/overview"}

// apiTimer times GET requests to the management API, by path.
type apiTimer struct {
	b    testing.TB
	base string
	hc   *http.Client
	mu   sync.Mutex
	lat  map[string][]time.Duration
}

func newAPITimer(b testing.TB, base string) *apiTimer {
	return &apiTimer{b: b, base: base, hc: &http.Client{Timeout: 30 * time.Second}, lat: map[string][]time.Duration{}}
}

// get asks for path once and records the time to the whole answer; it
// reports false (and fails the benchmark) when there was no good answer.
func (a *apiTimer) get(path string) bool {
	req, _ := http.NewRequest("GET", a.base+path, nil)
	req.SetBasicAuth("guest", "guest")
	at := time.Now()
	resp, err := a.hc.Do(req)
	if err != nil {
		a.b.Errorf("GET %s: %v", path, err)
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(at)
	if err != nil || resp.StatusCode != http.StatusOK {
		a.b.Errorf("GET %s: status %d, %v", path, resp.StatusCode, err)
		return false
	}
	a.mu.Lock()
	a.lat[path] = append(a.lat[path], took)
	a.mu.Unlock()
	return true
}

// least is the smallest number of answers timed for one path.
func (a *apiTimer) least() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := -1
	for _, p := range apiPaths {
		if n < 0 || len(a.lat[p]) < n {
			n = len(a.lat[p])
		}
	}
	return n
}

// report logs each path's median and worst time next to the same of
// idle (the requests without the load) and, in a benchmark, adds them as
// metrics.
func (a *apiTimer) report(idle *apiTimer) {
	for _, p := range apiPaths {
		loaded, base := slices.Sorted(slices.Values(a.lat[p])), slices.Sorted(slices.Values(idle.lat[p]))
		if len(loaded) == 0 || len(base) == 0 {
			continue
		}
		name := strings.TrimPrefix(p, "/api/")
		b50, p50, worst := base[len(base)/2], loaded[len(loaded)/2], loaded[len(loaded)-1]
		if b, ok := a.b.(*testing.B); ok {
			b.ReportMetric(ms(p50), name+"-p50-ms")
			b.ReportMetric(ms(worst), name+"-max-ms")
			b.ReportMetric(ms(b50), name+"-idle-p50-ms")
		}
		a.b.Logf("GET %s under the 15 MiB load: p50 %v, max %v over %d requests; without the load p50 %v, max %v over %d (p50 %.1f× the idle one)",
			p, p50.Round(10*time.Microsecond), worst.Round(10*time.Microsecond), len(loaded),
			b50.Round(10*time.Microsecond), base[len(base)-1].Round(10*time.Microsecond), len(base), float64(p50)/float64(b50))
	}
}

// ms is d in milliseconds, for b.ReportMetric.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
