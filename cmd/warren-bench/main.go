// Command warren-bench is an AMQP 0-9-1 load generator for Warren (and any
// other AMQP 0-9-1 broker, e.g. RabbitMQ). It measures throughput, end-to-end
// latency and message loss/duplication for queue, fanout and RPC workloads.
// Run with -h for the flags; see docs/benchmarks.md for reference runs.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal ends the run early (still draining and reporting);
		// restoring the default handling lets a second one kill the process.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
