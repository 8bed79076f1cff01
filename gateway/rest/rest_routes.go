package rest

// The REST data plane under /v1/: publish, leased consume with ack tokens,
// long-poll, SSE, curl RPC and the routing dry run. Each handler talks to
// the core through hidden connections opened as the authenticated user, so
// the core's permission checks apply exactly as for AMQP clients.
//
// State and goroutines: rest holds one tenant per (user, vhost) with a
// hidden connection, a pool of publish channels, a lease channel and an
// RPC reply channel, all created on first use. Handlers run on net/http's
// request goroutines; lease expiry and async RPC clean-up run on timers.
// Server shutdown (http.Server.RegisterOnShutdown, registered on the first
// request) cancels rest.ctx, which ends SSE streams and long polls, and
// closes every hidden connection, which requeues unsettled messages.

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

// restRoutes registers the /v1/ data plane.
func (s *Server) restRoutes() {
	r := newRest(s)
	s.onShutdown = append(s.onShutdown, func(context.Context) { r.close() })
	auth := func(h echo.HandlerFunc) echo.HandlerFunc { return r.guard(s.requireUser(h)) }
	e := s.echo
	// Echo does not match an empty last segment to a parameter: the
	// routes ending in "/" serve the empty routing key.
	e.POST("/v1/publish/:exchange/:routing_key", auth(r.publish))
	e.POST("/v1/publish/:exchange/", auth(r.publish))
	e.POST("/v1/publish", auth(r.publishBatch))
	e.POST("/v1/queues/:queue/get", auth(r.get))
	e.POST("/v1/ack/:token", auth(r.ack))
	e.POST("/v1/nack/:token", auth(r.nack))
	e.POST("/v1/extend/:token", auth(r.extend))
	e.GET("/v1/events", auth(r.events))
	e.POST("/v1/rpc/:exchange/:routing_key", auth(r.rpc))
	e.POST("/v1/rpc/:exchange/", auth(r.rpc))
	e.GET("/v1/replies/:id", auth(r.rpcReply))
	e.POST("/v1/route/:exchange/:routing_key", auth(r.route))
	e.POST("/v1/route/:exchange/", auth(r.route))
}

// rest is the shared state of the /v1/ handlers.
type rest struct {
	s   *Server
	key [32]byte // HMAC key of ack tokens, random per process

	ctx    context.Context // cancelled at shutdown
	cancel context.CancelFunc
	once   sync.Once // registers close with the http.Server

	mu      sync.Mutex
	tenants map[tenantKey]*tenant
	closed  bool

	chanNum atomic.Int64  // channel numbers of hidden channels, for listings
	pollID  atomic.Uint64 // long-poll consumer tags
	idem    idemCache
	async   byID[*rpcCall]    // RPC calls made with Prefer: respond-async
	sse     byID[*sseSession] // live SSE sessions
}

func newRest(s *Server) *rest {
	r := &rest{s: s, tenants: map[tenantKey]*tenant{}}
	rand.Read(r.key[:])
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if s.router != nil {
		r.idem.seed(s.router.TakeRecoveredPublishIDs())
	}
	return r
}

// guard recovers a panicking handler into a 500 (no handler can take the
// process down) and hooks rest's clean-up into server shutdown.
func (r *rest) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		r.once.Do(func() {
			if r.s.cfg.OnShutdown != nil {
				r.s.cfg.OnShutdown(r.close)
			}
		})
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				r.s.cfg.Logger.Error("HTTP handler panicked", "path", c.Request().URL.Path, "panic", p, "stack", string(debug.Stack()))
				err = apiError(http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
			}
		}()
		return next(c)
	}
}

// close ends streams and long polls and closes every hidden connection.
func (r *rest) close() {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	ts := r.tenants
	r.tenants = map[tenantKey]*tenant{}
	r.mu.Unlock()
	for _, t := range ts {
		t.close()
	}
	for _, s := range r.sse.takeAll() {
		s.close()
	}
	r.async.takeAll()
}

type tenantKey struct{ user, vhost string }

// tenant is one (user, vhost): a hidden connection and the channels the
// REST handlers share.
type tenant struct {
	r    *rest
	key  tenantKey
	vh   *mapping.VHost
	conn *mapping.Conn
	pubs chan *mapping.Channel // idle publish channels

	mu     sync.Mutex
	leases *leaseChan
	rpc    *rpcChan
}

// idlePublishChannels bounds the pool of publish channels per tenant.
const idlePublishChannels = 64

// vhostParam is ?vhost=, default "/".
func vhostParam(c echo.Context) string {
	if c.Request().URL.RawQuery == "" {
		return "/"
	}
	if v := c.QueryParam("vhost"); v != "" {
		return v
	}
	return "/"
}

// access authenticates the request and checks that the user may use
// vhost.
func (r *rest) access(c echo.Context, vhost string) (*mapping.UserInfo, *mapping.VHost, error) {
	u, err := r.s.authenticate(c)
	if err != nil {
		return nil, nil, err
	}
	vh, err := r.s.router.VHost(vhost)
	if err != nil {
		return nil, nil, apiError(http.StatusNotFound, fmt.Sprintf("no vhost '%s'", vhost))
	}
	if err := r.s.router.CheckVHostAccess(u.Name, vhost); err != nil {
		if mapping.KindOf(err) == mapping.KindNotAllowed {
			return nil, nil, apiError(http.StatusForbidden, err.Error())
		}
		return nil, nil, coreError(err)
	}
	return u, vh, nil
}

// tenantFor authenticates the request and returns its tenant for vhost,
// checking vhost access.
func (r *rest) tenantFor(c echo.Context, vhost string) (*tenant, error) {
	u, vh, err := r.access(c, vhost)
	if err != nil {
		return nil, err
	}
	k := tenantKey{u.Name, vhost}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, apiError(http.StatusServiceUnavailable, "warren is shutting down")
	}
	t := r.tenants[k]
	var stale *tenant
	if t != nil && t.vh != vh { // the vhost was deleted and created again
		stale, t = t, nil
	}
	if t == nil {
		t = &tenant{r: r, key: k, vh: vh, pubs: make(chan *mapping.Channel, idlePublishChannels)}
		conn, err := r.s.router.Connect(u.Name, vhost, mapping.ConnInfo{Name: "HTTP " + u.Name + "@" + vhost, Protocol: "HTTP", Hidden: true})
		if err != nil {
			r.mu.Unlock()
			return nil, coreError(err)
		}
		t.conn = conn
		r.tenants[k] = t
	}
	r.mu.Unlock()
	if stale != nil {
		stale.close()
	}
	return t, nil
}

// lookupTenant returns the existing tenant, or nil.
func (r *rest) lookupTenant(k tenantKey) *tenant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenants[k]
}

func (r *rest) nextChannel() int   { return int(r.chanNum.Add(1)) }
func (r *rest) nextPollID() uint64 { return r.pollID.Add(1) }

// channel takes an idle publish channel or opens one.
func (t *tenant) channel() *mapping.Channel {
	select {
	case ch := <-t.pubs:
		return ch
	default:
		return t.conn.OpenChannel(t.r.nextChannel(), nopSink{})
	}
}

// release returns a publish channel to the pool.
func (t *tenant) release(ch *mapping.Channel) {
	select {
	case t.pubs <- ch:
	default:
		ch.Close()
	}
}

func (t *tenant) close() {
	t.mu.Lock()
	l, rc := t.leases, t.rpc
	t.mu.Unlock()
	if l != nil {
		l.close()
	}
	if rc != nil {
		rc.close()
	}
	t.conn.Close()
}

// longRequest lifts the server's read deadline for a request that may
// outlive it (long poll, RPC, SSE); the request body must be read first.
// Without this the deadline would cancel the request's context.
func longRequest(c echo.Context) {
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Time{})
}

// nopSink is the sink of channels that never consume.
type nopSink struct{}

func (nopSink) Deliver(mapping.Delivery) bool { return true }
func (nopSink) Cancelled(string, error)       {}

// pathParam is an echo path parameter, percent-decoded (echo matches on
// the raw path when the URL has escapes, so "a%2Fb" stays escaped there).
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", apiError(http.StatusBadRequest, fmt.Sprintf("path parameter %s: %v", name, err))
	}
	return u, nil
}

// exchangeParam maps "amq.default" to the default exchange "".
func exchangeParam(c echo.Context) (string, error) {
	x, err := pathParam(c, "exchange")
	if x == "amq.default" {
		x = ""
	}
	return x, err
}
