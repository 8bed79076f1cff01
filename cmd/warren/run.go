package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/warrenmq/warren/amqpserver"
	"github.com/warrenmq/warren/gateway"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/shovel"
)

const shutdownTimeout = 15 * time.Second

const usage = `usage: warren [serve] [flags]

Commands:
  serve   run the broker (the default)
  ctl     administer a running broker over its HTTP API, rabbitmqctl-style
          (run 'warren ctl --help' for the verbs)

Run 'warren serve -h' for the flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			args = args[1:]
		case "ctl":
			return runCtl(ctx, args[1:], stdout, stderr)
		case "help", "-h", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "warren:", err)
		return 2
	}
	level, _ := parseLevel(cfg.LogLevel)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "warren:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "warren:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	inst, err := startInstance(cfg, logger)
	if err != nil {
		logger.Error("start failed", "err", err)
		return 1
	}
	logger.Info("warren ready", "amqp", inst.AMQPAddr(), "http", inst.HTTPAddr(), "data", cfg.DataDir)
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-inst.failed:
		logger.Error("listener failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := inst.Shutdown(sctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// instance is one running Warren: the core and its fronts. Tests start
// instances in-process with startInstance.
type instance struct {
	router  *mapping.Router
	shovels *shovel.Manager
	amqp    *amqpserver.Server
	http    *gateway.Server
	amqpLn  net.Listener
	httpLn  net.Listener
	failed  chan error
}

func startInstance(cfg Config, logger *slog.Logger) (*instance, error) {
	router, err := mapping.Open(mapping.Config{
		DataDir:        cfg.DataDir,
		SyncAlways:     cfg.Sync == "always",
		MaxMessageSize: cfg.MaxMessageSize,
		Logger:         logger,
		DefaultUser:    cfg.DefaultUser,
		DefaultPass:    cfg.DefaultPass,
		Alarms:         mapping.AlarmConfig{MemoryHighWatermark: cfg.MemoryLimit, DiskFreeLimit: cfg.DiskFreeLimit},
		Limits:         mapping.Limits{MaxConnections: cfg.MaxConnections, MaxQueues: cfg.MaxQueues},
	})
	if err != nil {
		return nil, err
	}
	amqpLn, err := net.Listen("tcp", cfg.AMQPAddr)
	if err != nil {
		router.Close()
		return nil, fmt.Errorf("AMQP listener: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		amqpLn.Close()
		router.Close()
		return nil, fmt.Errorf("HTTP listener: %w", err)
	}
	shovels := shovel.New(router, logger)
	inst := &instance{
		router:  router,
		shovels: shovels,
		amqp:    amqpserver.New(amqpserver.Config{Logger: logger, MaxMessageSize: cfg.MaxMessageSize}, router),
		http: gateway.New(gateway.Config{
			Logger:      logger,
			CORSOrigins: splitList(cfg.CORSOrigins),
			WS:          gateway.WSConfig{AllowedOrigins: splitList(cfg.WSOrigins), TokenSecret: []byte(cfg.TokenSecret)},
			Shovels:     shovels,
		}, router),
		amqpLn: amqpLn,
		httpLn: httpLn,
		failed: make(chan error, 2),
	}
	go func() {
		if err := inst.amqp.Serve(amqpLn); err != nil && !errors.Is(err, amqpserver.ErrServerClosed) {
			inst.failed <- err
		}
	}()
	go func() {
		if err := inst.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			inst.failed <- err
		}
	}()
	// Stored shovels resume once the fronts serve (one may point at them).
	if err := shovels.Start(); err != nil {
		logger.Error("starting stored shovels", "err", err)
	}
	return inst, nil
}

func (i *instance) AMQPAddr() string { return i.amqpLn.Addr().String() }
func (i *instance) HTTPAddr() string { return i.httpLn.Addr().String() }

// Shutdown stops the fronts first (so no new work arrives), then the core.
func (i *instance) Shutdown(ctx context.Context) error {
	err := errors.Join(i.amqp.Shutdown(ctx), i.http.Shutdown(ctx))
	i.shovels.Close() // unconfirmed messages go back to their source queues
	return errors.Join(err, i.router.Close())
}
