package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// BenchmarkRESTPublish is POST /v1/publish/amq.default/bench with a 1 KB
// body and basic auth, through the echo router and middleware (no
// sockets), into a durable queue; persistent messages go to the store
// with group commit. 32 requests run at a time. It shows the per-request
// CPU and allocations of the HTTP front and the core, without net/http's
// connection handling.
func BenchmarkRESTPublish(b *testing.B) {
	for _, mode := range []string{"transient", "persistent"} {
		b.Run(mode, func(b *testing.B) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			r, err := mapping.Open(mapping.Config{DataDir: b.TempDir(), Logger: log, SyncAlways: true})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			s := New(Config{Logger: log}, r)
			req := httptest.NewRequest("PUT", "/api/queues/%2F/bench", strings.NewReader(`{"durable":true}`))
			req.RemoteAddr = "127.0.0.1:40000"
			req.SetBasicAuth("guest", "guest")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.echo.ServeHTTP(rec, req)
			if rec.Code/100 != 2 {
				b.Fatalf("declare: %d %s", rec.Code, rec.Body)
			}
			body := bytes.Repeat([]byte("x"), 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("POST", "/v1/publish/amq.default/bench", bytes.NewReader(body))
					req.RemoteAddr = "127.0.0.1:40000"
					req.Header.Set("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
					req.Header.Set("Content-Type", "text/plain")
					if mode == "transient" {
						req.Header.Set("X-Amqp-Delivery-Mode", "1")
					}
					rec := httptest.NewRecorder()
					s.echo.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("publish: %d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
