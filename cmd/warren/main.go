// Command warren runs the Warren broker: AMQP 0-9-1, HTTP and WebSocket
// fronts on one routing core stored in embedded NATS JetStream.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
