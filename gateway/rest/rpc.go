package rest

// curl RPC: POST /v1/rpc/{exchange}/{routing_key} publishes the body with
// a fresh correlation_id and reply_to amq.rabbitmq.reply-to (direct
// reply-to: no queue, no disk) from the tenant's RPC channel, so the
// request carries the caller's identity and permissions. The channel's
// sink hands each reply to the waiting request by correlation_id.

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

const (
	defaultRPCTimeout = 30 * time.Second
	maxRPCTimeout     = 5 * time.Minute
	// asyncKeep is how long an async call's reply waits to be fetched.
	asyncKeep = 5 * time.Minute
)

// rpcChan is a tenant's reply channel.
type rpcChan struct {
	ch *mapping.Channel

	mu      sync.Mutex // the sink lock
	pending map[string]*rpcCall
}

// rpcCall is one request waiting for its reply.
type rpcCall struct {
	corr     string
	id       string // async calls only
	user     string
	deadline time.Time
	timeout  time.Duration
	done     chan struct{} // closed when msg is set
	msg      *mapping.Message
}

// rpcChannel returns the tenant's reply channel, opening it on first use.
func (t *tenant) rpcChannel() (*rpcChan, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rpc != nil {
		return t.rpc, nil
	}
	rc := &rpcChan{pending: map[string]*rpcCall{}}
	rc.ch = t.conn.OpenChannel(t.r.nextChannel(), rc)
	if err := rc.ch.Consume(mapping.DirectReplyTo, "warren.rpc", true, false, nil, func(string) {}); err != nil {
		rc.ch.Close()
		return nil, coreError(err)
	}
	t.rpc = rc
	return rc, nil
}

// Deliver implements mapping.Sink: match a reply to its call (core locks
// held: no blocking). Replies nobody waits for any more are dropped, as
// RabbitMQ drops them.
func (rc *rpcChan) Deliver(d mapping.Delivery) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if call := rc.pending[d.Message.Properties.CorrelationID]; call != nil {
		delete(rc.pending, call.corr)
		call.msg = d.Message
		close(call.done)
	}
	return true
}

// Cancelled implements mapping.Sink; the reply consumer is never cancelled
// by the server.
func (rc *rpcChan) Cancelled(string, error) {}

func (rc *rpcChan) forget(call *rpcCall) {
	rc.mu.Lock()
	if rc.pending[call.corr] == call {
		delete(rc.pending, call.corr)
	}
	rc.mu.Unlock()
}

func (rc *rpcChan) close() { rc.ch.Close() }

func restRandomID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// preferWait parses "Prefer: wait=N" (seconds, RFC 7240).
var preferWaitRe = regexp.MustCompile(`(?i)(?:^|[,;\s])wait\s*=\s*"?([0-9]+(?:\.[0-9]+)?)`)

func preferAsync(prefer string) bool {
	for _, p := range strings.Split(prefer, ",") {
		if strings.EqualFold(strings.TrimSpace(strings.SplitN(p, ";", 2)[0]), "respond-async") {
			return true
		}
	}
	return false
}

// rpc is POST /v1/rpc/{exchange}/{routing_key}?timeout=DURATION.
func (r *rest) rpc(c echo.Context) error {
	exchange, err := exchangeParam(c)
	if err != nil {
		return err
	}
	key, err := pathParam(c, "routing_key")
	if err != nil {
		return err
	}
	timeout, err := restDuration(c, "timeout", defaultRPCTimeout, time.Millisecond, maxRPCTimeout)
	if err != nil {
		return err
	}
	props, err := propsFromHeaders(c.Request().Header, 1)
	if err != nil {
		return err
	}
	t, err := r.tenantFor(c, vhostParam(c))
	if err != nil {
		return err
	}
	body, err := restBody(c, r.s.router.MaxMessageSize())
	if err != nil {
		return err
	}
	longRequest(c)
	rc, err := t.rpcChannel()
	if err != nil {
		return err
	}
	call := &rpcCall{corr: restRandomID(), user: t.key.user, timeout: timeout, deadline: time.Now().Add(timeout), done: make(chan struct{})}
	props.CorrelationID, props.ReplyTo = call.corr, mapping.DirectReplyTo
	props.Flags |= mapping.FlagCorrelationID | mapping.FlagReplyTo
	if props.Flags&mapping.FlagExpiration == 0 {
		// A request nobody waits for any more should not reach a worker.
		props.Expiration, props.Flags = strconv.FormatInt(timeout.Milliseconds()+1, 10), props.Flags|mapping.FlagExpiration
	}
	rc.mu.Lock()
	rc.pending[call.corr] = call
	rc.mu.Unlock()
	out, err := publishAndWait(rc.ch, &mapping.Message{Exchange: exchange, RoutingKey: key, Properties: props, Body: body}, c.Request().Context(), r.ctx)
	if err != nil || !out.Routed {
		rc.forget(call)
		if err != nil {
			return err
		}
		return apiError(http.StatusNotFound, fmt.Sprintf("no route: no queue is bound to exchange '%s' in vhost '%s' for routing key '%s', so no worker can receive the request", displayExchange(exchange), t.key.vhost, key))
	}
	if preferAsync(c.Request().Header.Get("Prefer")) {
		call.id = restRandomID()
		r.async.add(call.id, call)
		time.AfterFunc(timeout, func() { rc.forget(call) })
		time.AfterFunc(timeout+asyncKeep, func() { r.async.remove(call.id) })
		loc := "/v1/replies/" + call.id
		c.Response().Header().Set("Location", loc)
		c.Response().Header().Set("Preference-Applied", "respond-async")
		return c.JSON(http.StatusAccepted, map[string]string{"id": call.id, "location": loc, "expires_at": call.deadline.UTC().Format(time.RFC3339Nano)})
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-call.done:
		return writeReply(c, call.msg)
	case <-timer.C:
		rc.forget(call)
		return rpcTimeout(call)
	case <-c.Request().Context().Done():
		rc.forget(call)
		return nil
	case <-r.ctx.Done():
		rc.forget(call)
		return apiError(http.StatusServiceUnavailable, "warren is shutting down")
	}
}

func rpcTimeout(call *rpcCall) error {
	return apiError(http.StatusGatewayTimeout, fmt.Sprintf("no reply within %v: the request was routed, but no worker answered in time (raise ?timeout= or check the worker)", call.timeout))
}

// writeReply answers with the worker's reply: its body, its content_type
// as Content-Type and its other properties as X-Amqp-* headers.
func writeReply(c echo.Context, m *mapping.Message) error {
	setPropsHeaders(c.Response().Header(), &m.Properties)
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write(m.Body)
	return err
}

// rpcReply is GET /v1/replies/{id}: the reply of an async call, waiting
// up to Prefer: wait=N seconds for it.
func (r *rest) rpcReply(c echo.Context) error {
	u, err := r.s.authenticate(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	call := r.async.get(id)
	if call == nil || call.user != u.Name {
		return apiError(http.StatusNotFound, fmt.Sprintf("no pending RPC call '%s': it was never made, its reply was already fetched, or it expired", id))
	}
	longRequest(c)
	var wait time.Duration
	if m := preferWaitRe.FindStringSubmatch(c.Request().Header.Get("Prefer")); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		wait = min(time.Duration(f*float64(time.Second)), restMaxWait)
	}
	if left := time.Until(call.deadline); wait > left {
		wait = max(left, 0)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-call.done:
		r.async.remove(id)
		return writeReply(c, call.msg)
	case <-timer.C:
	case <-c.Request().Context().Done():
		return nil
	case <-r.ctx.Done():
		return apiError(http.StatusServiceUnavailable, "warren is shutting down")
	}
	select {
	case <-call.done:
		r.async.remove(id)
		return writeReply(c, call.msg)
	default:
	}
	if !time.Now().Before(call.deadline) {
		r.async.remove(id)
		return rpcTimeout(call)
	}
	c.Response().Header().Set("Location", "/v1/replies/"+id)
	c.Response().Header().Set("Retry-After", "1")
	return c.JSON(http.StatusAccepted, map[string]string{"id": id, "location": "/v1/replies/" + id, "expires_at": call.deadline.UTC().Format(time.RFC3339Nano)})
}
