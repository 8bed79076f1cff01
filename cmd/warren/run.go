package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
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
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}

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
	logger.Info("warren ready", "amqp", inst.AMQPAddr(), "amqps", inst.AMQPSAddr(), "http", inst.HTTPAddr(), "https", inst.HTTPSAddr(), "data", cfg.DataDir)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			break wait
		case err := <-inst.failed:
			logger.Error("listener failed", "err", err)
			break wait
		case <-hup:
			inst.ReloadTLS("SIGHUP")
		}
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
	router    *mapping.Router
	shovels   *shovel.Manager
	amqp      *amqpserver.Server
	http      *gateway.Server
	amqpLns   []net.Listener
	amqpsLns  []net.Listener
	httpLn    net.Listener // nil when off
	httpsLn   net.Listener // nil when off
	reloaders []*certReloader
	watcher   *tlsWatcher
	failed    chan error
}

func startInstance(cfg Config, logger *slog.Logger) (*instance, error) {
	inst := &instance{}
	// TLS files are read before anything listens, so that a bad
	// certificate stops the start.
	var amqpsTLS, httpsTLS *certReloader
	minTLS, maxTLS, _ := tlsVersionRange(cfg.TLSVersions) // checked by finishConfig
	if listenerOn(cfg.AMQPSAddr) {
		r, err := newCertReloader(tlsFiles{name: "AMQPS", cert: cfg.TLSCert, key: cfg.TLSKey, ca: cfg.TLSCA, verifyPeer: cfg.TLSVerifyPeer, failIfNoPeer: cfg.TLSFailIfNoPeerCert, minVersion: minTLS, maxVersion: maxTLS}, logger)
		if err != nil {
			return nil, err
		}
		amqpsTLS = r
		inst.reloaders = append(inst.reloaders, r)
	}
	if listenerOn(cfg.HTTPSAddr) {
		f := tlsFiles{name: "HTTPS", cert: cfg.TLSCert, key: cfg.TLSKey, ca: cfg.TLSCA, nextProtos: []string{"http/1.1"}, minVersion: minTLS, maxVersion: maxTLS}
		if cfg.HTTPSCert != "" {
			f.cert, f.key = cfg.HTTPSCert, cfg.HTTPSKey
		}
		if cfg.HTTPSCA != "" {
			f.ca = cfg.HTTPSCA
		}
		r, err := newCertReloader(f, logger)
		if err != nil {
			return nil, err
		}
		httpsTLS = r
		inst.reloaders = append(inst.reloaders, r)
	}
	cluster, err := clusterConfig(cfg)
	if err != nil {
		return nil, err
	}
	router, err := mapping.Open(mapping.Config{
		DefaultQueueType: cfg.DefaultQueueType, // qtype.go
		Placement:        placementConfig(cfg),

		DataDir:        cfg.DataDir,
		SyncAlways:     cfg.Sync == "always",
		MaxMessageSize: cfg.MaxMessageSize,
		Logger:         logger,
		DefaultUser:    cfg.DefaultUser,
		DefaultPass:    cfg.DefaultPass,
		DefaultVHost:   cfg.DefaultVHost,
		LoopbackUsers:  cfg.LoopbackUsers,
		Alarms:         mapping.AlarmConfig{MemoryHighWatermark: cfg.MemoryLimit, MemoryRelative: cfg.MemoryRelative, DiskFreeLimit: cfg.DiskFreeLimit},
		Limits:         mapping.Limits{MaxConnections: cfg.MaxConnections, MaxQueues: cfg.MaxQueues},
		Cluster:        cluster,
	})
	if err != nil {
		return nil, err
	}
	inst.router = router
	var all []net.Listener
	listen := func(what, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range all {
				l.Close()
			}
			router.Close()
			return nil, fmt.Errorf("%s listener: %w", what, err)
		}
		all = append(all, ln)
		return ln, nil
	}
	for _, a := range listenAddrs(cfg.AMQPAddr) {
		ln, err := listen("AMQP", a)
		if err != nil {
			return nil, err
		}
		inst.amqpLns = append(inst.amqpLns, ln)
	}
	for _, a := range listenAddrs(cfg.AMQPSAddr) {
		ln, err := listen("AMQPS", a)
		if err != nil {
			return nil, err
		}
		inst.amqpsLns = append(inst.amqpsLns, ln)
	}
	if a := listenAddrs(cfg.HTTPAddr); len(a) > 0 {
		if inst.httpLn, err = listen("HTTP", a[0]); err != nil {
			return nil, err
		}
	}
	if a := listenAddrs(cfg.HTTPSAddr); len(a) > 0 {
		if inst.httpsLn, err = listen("HTTPS", a[0]); err != nil {
			return nil, err
		}
	}
	inst.amqp = amqpserver.New(amqpserver.Config{
		Logger: logger, MaxMessageSize: cfg.MaxMessageSize,
		Heartbeat: cfg.Heartbeat, FrameMax: cfg.FrameMax, ChannelMax: cfg.ChannelMax,
		Mechanisms: splitList(cfg.AuthMechanisms),
	}, router)
	inst.shovels = shovel.New(router, logger)
	inst.http = gateway.New(gateway.Config{
		Logger:      logger,
		CORSOrigins: splitList(cfg.CORSOrigins),
		WS:          gateway.WSConfig{AllowedOrigins: splitList(cfg.WSOrigins), TokenSecret: []byte(cfg.TokenSecret)},
		Shovels:     inst.shovels,
	}, router)
	// AMQP 0-9-1 over WebSocket at /ws/amqp, served by the AMQP server.
	inst.http.SetAMQPWebSocket(func(nc net.Conn) error { return inst.amqp.ServeConn(nc, amqpserver.ProtocolAMQPWebSocket) })
	inst.failed = make(chan error, len(all))
	serve := func(ln net.Listener, serve func(net.Listener) error, closed error) {
		go func() {
			if err := serve(ln); err != nil && !errors.Is(err, closed) {
				inst.failed <- err
			}
		}()
	}
	for _, ln := range inst.amqpLns {
		serve(ln, inst.amqp.Serve, amqpserver.ErrServerClosed)
	}
	for _, ln := range inst.amqpsLns {
		serve(tls.NewListener(ln, amqpsTLS.serverConfig()), inst.amqp.Serve, amqpserver.ErrServerClosed)
	}
	if inst.httpLn != nil {
		serve(inst.httpLn, inst.http.Serve, http.ErrServerClosed)
	}
	if inst.httpsLn != nil {
		serve(tls.NewListener(inst.httpsLn, httpsTLS.serverConfig()), inst.http.Serve, http.ErrServerClosed)
	}
	inst.watcher = startTLSWatcher(cfg.TLSWatchInterval, inst.reloaders)
	// Stored shovels resume once the fronts serve (one may point at them).
	if err := inst.shovels.Start(); err != nil {
		logger.Error("starting stored shovels", "err", err)
	}
	return inst, nil
}

func lnAddr(lns ...net.Listener) string {
	for _, ln := range lns {
		if ln != nil {
			return ln.Addr().String()
		}
	}
	return ""
}

// AMQPAddr and the others are the first listener's address of each kind,
// "" when that kind is off.
func (i *instance) AMQPAddr() string  { return lnAddr(i.amqpLns...) }
func (i *instance) AMQPSAddr() string { return lnAddr(i.amqpsLns...) }
func (i *instance) HTTPAddr() string  { return lnAddr(i.httpLn) }
func (i *instance) HTTPSAddr() string { return lnAddr(i.httpsLn) }

// ReloadTLS rereads every listener's certificate files (SIGHUP).
func (i *instance) ReloadTLS(reason string) {
	for _, r := range i.reloaders {
		r.reload(reason)
	}
}

// Shutdown stops the fronts first (so no new work arrives), then the core.
func (i *instance) Shutdown(ctx context.Context) error {
	i.watcher.Stop()
	err := errors.Join(i.amqp.Shutdown(ctx), i.http.Shutdown(ctx))
	i.shovels.Close() // unconfirmed messages go back to their source queues
	return errors.Join(err, i.router.Close())
}
