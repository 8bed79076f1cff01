package conformance

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqpserver"
	"github.com/warrenmq/warren/mapping"
)

// One in-process Warren serves the whole package: tests use unique names,
// as they do against a shared RabbitMQ.
var shared struct {
	once   sync.Once
	url    string
	err    error
	dir    string
	router *mapping.Router
	srv    *amqpserver.Server
}

// startWarren starts (once) an in-process Warren on 127.0.0.1:0 and
// returns its AMQP URL.
func startWarren(t *testing.T) string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "warren-conformance-")
		if shared.err != nil {
			return
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if os.Getenv("WARREN_TEST_LOG") != "" {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		shared.router, shared.err = mapping.Open(mapping.Config{DataDir: shared.dir, Logger: logger})
		if shared.err != nil {
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			shared.err = err
			return
		}
		shared.srv = amqpserver.New(amqpserver.Config{Logger: logger}, shared.router)
		go shared.srv.Serve(ln)
		shared.url = "amqp://guest:guest@" + ln.Addr().String() + "/"
	})
	if shared.err != nil {
		t.Fatalf("start Warren: %v", shared.err)
	}
	return shared.url
}

// stopWarren shuts the shared instance down after the tests.
func stopWarren() {
	if shared.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shared.srv.Shutdown(ctx)
	shared.router.Close()
	os.RemoveAll(shared.dir)
}
