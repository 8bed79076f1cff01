package amqpserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// Defaults offered in connection.tune and the handshake deadline.
const (
	DefaultFrameMax         = 131072
	DefaultChannelMax       = 2047
	DefaultHeartbeat        = 60 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("amqpserver: server closed")

// Config configures the AMQP front. The zero value works.
type Config struct {
	Logger           *slog.Logger
	FrameMax         uint32        // 0 → DefaultFrameMax
	ChannelMax       uint16        // 0 → DefaultChannelMax
	Heartbeat        time.Duration // 0 → DefaultHeartbeat; negative disables
	HandshakeTimeout time.Duration // 0 → DefaultHandshakeTimeout
	MaxMessageSize   int64         // 0 → the router's limit
	// Mechanisms limits the SASL mechanisms offered (RabbitMQ's
	// auth_mechanisms); nil offers PLAIN, AMQPLAIN and, to clients with a
	// verified TLS certificate, EXTERNAL.
	Mechanisms []string
	Product    string // 0 → "Warren"
	Version    string
}

// Server accepts AMQP 0-9-1 connections and serves them from the core.
type Server struct {
	cfg    Config
	router *mapping.Router
	log    *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	wg        sync.WaitGroup // one per connection goroutine set
}

// New returns a server for the router.
func New(cfg Config, r *mapping.Router) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FrameMax == 0 {
		cfg.FrameMax = DefaultFrameMax
	}
	if cfg.ChannelMax == 0 {
		cfg.ChannelMax = DefaultChannelMax
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxMessageSize <= 0 || cfg.MaxMessageSize > r.MaxMessageSize() {
		cfg.MaxMessageSize = r.MaxMessageSize()
	}
	if cfg.Product == "" {
		cfg.Product = "Warren"
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	return &Server{cfg: cfg, router: r, log: cfg.Logger, listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
}

// Version is Warren's version as announced to clients.
const Version = "0.1.0"

// Serve accepts connections on ln until Shutdown; it always returns an
// error, ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c, err := s.track(nc, ProtocolAMQP)
		if err != nil {
			return err
		}
		go c.serve()
	}
}

// Protocol labels of connections in the management API.
const (
	ProtocolAMQP          = "AMQP 0-9-1"
	ProtocolAMQPWebSocket = "AMQP 0-9-1/WebSocket"
)

// ServeConn serves one AMQP 0-9-1 connection accepted elsewhere, for
// instance a WebSocket carrying the AMQP byte stream (gateway's
// /ws/amqp), and returns when it has ended; nc is closed then. protocol
// labels the connection in the management API (ProtocolAMQPWebSocket).
// After Shutdown it closes nc and returns ErrServerClosed.
func (s *Server) ServeConn(nc net.Conn, protocol string) error {
	c, err := s.track(nc, protocol)
	if err != nil {
		return err
	}
	c.serve()
	return nil
}

// track registers a new connection, or closes nc when shutting down.
func (s *Server) track(nc net.Conn, protocol string) (*conn, error) {
	c := newConn(s, nc)
	c.protocol = protocol
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		return nil, ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c, nil
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes every connection with 320
// CONNECTION_FORCED and waits for their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown("broker shutdown")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.nc.Close()
		}
		return ctx.Err()
	}
}
