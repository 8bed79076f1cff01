package rest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

const (
	restMaxCount = 1000
	restMaxWait  = 5 * time.Minute
)

// restDuration parses a duration parameter: a Go duration ("1.5s",
// "250ms") or a number of seconds.
func restDuration(c echo.Context, name string, def, min, max time.Duration) (time.Duration, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, apiError(http.StatusBadRequest, fmt.Sprintf("query parameter %s must be a duration such as 30s or 500ms, got '%s'", name, v))
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < min || d > max {
		return 0, apiError(http.StatusBadRequest, fmt.Sprintf("query parameter %s must be between %v and %v, got %v", name, min, max, d))
	}
	return d, nil
}

// restInt parses an integer parameter within [min, max].
func restInt(c echo.Context, name string, def, min, max int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, apiError(http.StatusBadRequest, fmt.Sprintf("query parameter %s must be an integer from %d to %d, got '%s'", name, min, max, v))
	}
	return n, nil
}

// get is POST /v1/queues/{queue}/get: up to count messages, waiting up to
// wait for the first; in manual mode each is leased with an ack token.
func (r *rest) get(c echo.Context) error {
	queue, err := pathParam(c, "queue")
	if err != nil {
		return err
	}
	count, err := restInt(c, "count", 1, 1, restMaxCount)
	if err != nil {
		return err
	}
	wait, err := restDuration(c, "wait", 0, 0, restMaxWait)
	if err != nil {
		return err
	}
	leaseFor, err := restDuration(c, "lease", defaultLease, minLease, maxLease)
	if err != nil {
		return err
	}
	var manual bool
	switch a := c.QueryParam("ack"); a {
	case "", "manual":
		manual = true
	case "auto":
	default:
		return apiError(http.StatusBadRequest, fmt.Sprintf("query parameter ack must be 'auto' or 'manual', got '%s'", a))
	}
	raw := wantsRaw(c.Request().Header.Get("Accept"))
	if raw && count != 1 {
		return apiError(http.StatusBadRequest, "Accept: application/octet-stream needs count=1 (the body is one message body)")
	}
	t, err := r.tenantFor(c, vhostParam(c))
	if err != nil {
		return err
	}
	longRequest(c)
	l := t.leaseChannel()
	ds, remaining, err := l.takeMessages(c.Request().Context(), r.ctx, queue, count, wait, manual)
	if err != nil {
		return coreError(err)
	}
	if c.Request().Context().Err() != nil && manual {
		for _, d := range ds { // nobody will see them
			l.ch.Nack(d.Tag, false, true)
		}
		return nil
	}
	if remaining < 0 && len(ds) > 0 {
		if st, err := t.vh.Queue(queue); err == nil {
			remaining = st.Ready
		}
	}
	out := make([]jsonMessage, len(ds))
	for i, d := range ds {
		out[i] = toJSONMessage(d)
		if remaining >= 0 {
			out[i].MessageCount = &remaining
		}
		if manual {
			tok, exp := l.add(d.Tag, queue, leaseFor)
			out[i].AckToken, out[i].LeaseExpiresAt = tok, exp.UTC().Format(time.RFC3339Nano)
		}
	}
	if raw {
		if len(ds) == 0 {
			return c.NoContent(http.StatusNoContent)
		}
		h := c.Response().Header()
		setPropsHeaders(h, &ds[0].Message.Properties)
		h.Set("X-Amqp-Exchange", ds[0].Message.Exchange)
		h.Set("X-Amqp-Routing-Key", ds[0].Message.RoutingKey)
		h.Set("X-Amqp-Redelivered", strconv.FormatBool(ds[0].Redelivered))
		if remaining >= 0 {
			h.Set("X-Amqp-Message-Count", strconv.Itoa(remaining))
		}
		if manual {
			h.Set("X-Amqp-Ack-Token", out[0].AckToken)
			h.Set("X-Amqp-Lease-Expires-At", out[0].LeaseExpiresAt)
		}
		c.Response().WriteHeader(http.StatusOK)
		_, err := c.Response().Write(ds[0].Message.Body)
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"messages": out})
}

// wantsRaw: the client asked for the raw body rather than JSON.
func wantsRaw(accept string) bool {
	return strings.Contains(accept, "application/octet-stream") && !strings.Contains(accept, "application/json")
}

// takeMessages gets up to count messages; when the queue is empty it
// waits up to wait for the first with a consumer of prefetch count.
// remaining is the ready count after the gets, or -1 when unknown.
func (l *leaseChan) takeMessages(ctx, stop context.Context, queue string, count int, wait time.Duration, manual bool) ([]mapping.Delivery, int, error) {
	var ds []mapping.Delivery
	remaining := -1
	for len(ds) < count {
		d, rem, ok, err := l.ch.Get(queue, !manual)
		if err != nil {
			if len(ds) > 0 {
				break
			}
			return nil, 0, err
		}
		if !ok {
			remaining = 0
			break
		}
		ds, remaining = append(ds, d), rem
	}
	if len(ds) > 0 || wait == 0 {
		return ds, remaining, nil
	}
	if st, err := l.t.vh.Queue(queue); err == nil && st.AutoDelete {
		// A consumer would make an auto-delete queue go away when it is
		// cancelled; basic.get does not, so poll with gets instead.
		return l.pollByGet(ctx, stop, queue, count, wait, manual)
	}
	ds, err := l.poll(ctx, stop, queue, count, wait)
	if err != nil {
		return nil, 0, err
	}
	if !manual {
		for _, d := range ds {
			l.ch.Ack(d.Tag, false)
		}
	}
	return ds, -1, nil
}

// poll consumes queue with prefetch count until the first delivery, the
// wait, or cancellation; Cancel returns only when no more deliveries can
// arrive for the consumer, so none is lost.
func (l *leaseChan) poll(ctx, stop context.Context, queue string, count int, wait time.Duration) ([]mapping.Delivery, error) {
	tag := "warren.poll-" + strconv.FormatUint(l.t.r.nextPollID(), 10)
	w := &pollWaiter{wake: make(chan struct{}, 1)}
	l.mu.Lock()
	l.waiters[tag] = w
	l.mu.Unlock()
	forget := func() ([]mapping.Delivery, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.waiters, tag)
		if len(w.got) == 0 && w.cancelled != nil {
			return nil, w.cancelled // as a get of the queue now answers
		}
		return w.got, nil
	}
	l.consumeMu.Lock()
	l.ch.SetPrefetch(count, false)
	err := l.ch.Consume(queue, tag, false, false, nil, func(string) {})
	l.consumeMu.Unlock()
	if err != nil {
		forget()
		return nil, err
	}
	timer := time.NewTimer(wait)
	select {
	case <-w.wake:
	case <-timer.C:
	case <-ctx.Done():
	case <-stop.Done():
	}
	timer.Stop()
	l.ch.Cancel(tag)
	return forget()
}

// pollByGet retries gets with a growing pause (10 ms to 200 ms) until a
// message comes or wait passes.
func (l *leaseChan) pollByGet(ctx, stop context.Context, queue string, count int, wait time.Duration, manual bool) ([]mapping.Delivery, int, error) {
	deadline := time.Now().Add(wait)
	pause := 10 * time.Millisecond
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, 0, nil
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, 0, nil
		case <-stop.Done():
			t.Stop()
			return nil, 0, nil
		}
		pause = min(2*pause, 200*time.Millisecond)
		ds, remaining, err := l.takeMessages(ctx, stop, queue, count, 0, manual)
		if err != nil || len(ds) > 0 {
			return ds, remaining, err
		}
	}
}

// settleToken finds the lease of a token of the authenticated user.
func (r *rest) settleToken(c echo.Context) (*leaseChan, *lease, error) {
	u, err := r.s.authenticate(c)
	if err != nil {
		return nil, nil, err
	}
	vhost, chanID, tag, err := r.parseToken(c.Param("token"), u.Name)
	if err != nil {
		return nil, nil, err
	}
	t := r.lookupTenant(tenantKey{u.Name, vhost})
	if t == nil {
		return nil, nil, leaseGone()
	}
	t.mu.Lock()
	l := t.leases
	t.mu.Unlock()
	if l == nil || l.id != chanID {
		return nil, nil, leaseGone()
	}
	ls, err := l.take(tag)
	if err != nil {
		return nil, nil, err
	}
	return l, ls, nil
}

// ack is POST /v1/ack/{token}.
func (r *rest) ack(c echo.Context) error {
	l, ls, err := r.settleToken(c)
	if err != nil {
		return err
	}
	if err := l.ch.Ack(ls.tag, false); err != nil {
		return coreError(err)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "acked"})
}

// nack is POST /v1/nack/{token}?requeue=true|false.
func (r *rest) nack(c echo.Context) error {
	requeue, err := restBool(c, "requeue", true)
	if err != nil {
		return err
	}
	l, ls, err := r.settleToken(c)
	if err != nil {
		return err
	}
	if err := l.ch.Nack(ls.tag, false, requeue); err != nil {
		return coreError(err)
	}
	status := "requeued"
	if !requeue {
		status = "rejected"
	}
	return c.JSON(http.StatusOK, map[string]string{"status": status})
}

// extend is POST /v1/extend/{token}?lease=DURATION.
func (r *rest) extend(c echo.Context) error {
	d, err := restDuration(c, "lease", defaultLease, minLease, maxLease)
	if err != nil {
		return err
	}
	u, err := r.s.authenticate(c)
	if err != nil {
		return err
	}
	tok := c.Param("token")
	vhost, chanID, tag, err := r.parseToken(tok, u.Name)
	if err != nil {
		return err
	}
	t := r.lookupTenant(tenantKey{u.Name, vhost})
	if t == nil {
		return leaseGone()
	}
	t.mu.Lock()
	l := t.leases
	t.mu.Unlock()
	if l == nil || l.id != chanID {
		return leaseGone()
	}
	exp, err := l.extend(tag, d)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"ack_token": tok, "lease_expires_at": exp.UTC().Format(time.RFC3339Nano)})
}
