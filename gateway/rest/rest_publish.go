package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/validate"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// publishResult is the answer of a publish.
type publishResult struct {
	Routed bool `json:"routed"`
}

// restBody reads the request body, refusing (413) before reading when it
// is longer than limit.
func restBody(c echo.Context, limit int64) ([]byte, error) {
	req := c.Request()
	if req.ContentLength > limit {
		return nil, apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is larger than the maximum of %d bytes", req.ContentLength, limit))
	}
	n := req.ContentLength
	if n == 0 {
		return []byte{}, nil
	}
	if n > 0 && n <= 1<<20 {
		// The usual case: read exactly the announced length (net/http
		// ends the body there) into a buffer of that size.
		buf := make([]byte, n)
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			return nil, apiError(http.StatusBadRequest, "reading the request body: "+err.Error())
		}
		return buf, nil
	}
	// Unknown or large length: grow with what arrives, not with what is
	// announced.
	buf := bytes.NewBuffer(make([]byte, 0, 512))
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than the maximum of %d bytes", limit))
		}
		return nil, apiError(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	return buf.Bytes(), nil
}

// restBool parses an optional boolean query parameter.
func restBool(c echo.Context, name string, def bool) (bool, error) {
	if c.Request().URL.RawQuery == "" {
		return def, nil // no query: skip parsing one
	}
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, apiError(http.StatusBadRequest, fmt.Sprintf("query parameter %s must be true or false, got '%s'", name, v))
	}
	return b, nil
}

// publish is POST /v1/publish/{exchange}/{routing_key}: the body is the
// message body; it answers once every target queue has stored it.
func (r *rest) publish(c echo.Context) error {
	exchange, err := exchangeParam(c)
	if err != nil {
		return err
	}
	key, err := pathParam(c, "routing_key")
	if err != nil {
		return err
	}
	mandatory, err := restBool(c, "mandatory", false)
	if err != nil {
		return err
	}
	props, err := propsFromHeaders(c.Request().Header, 2)
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
	m := &mapping.Message{Exchange: exchange, RoutingKey: key, Properties: props, Body: body}
	var res publishResult
	if ik := c.Request().Header.Get("Idempotency-Key"); ik != "" {
		m.PublishID = idemPublishID(t.key, ik)
		var replayed bool
		res, replayed, err = r.idem.do(t.key, ik, func() (publishResult, error) { return r.publishOne(c, t, m) })
		if replayed {
			c.Response().Header().Set("Idempotent-Replayed", "true")
		}
	} else {
		res, err = r.publishOne(c, t, m)
	}
	if err != nil {
		return err
	}
	if mandatory && !res.Routed {
		return apiError(http.StatusNotFound, fmt.Sprintf("NO_ROUTE: no queue is bound to exchange '%s' in vhost '%s' for routing key '%s'; the message was not stored", displayExchange(exchange), t.key.vhost, key))
	}
	if res.Routed {
		return c.JSONBlob(http.StatusOK, routedTrue)
	}
	return c.JSONBlob(http.StatusOK, routedFalse)
}

// The two answers of a publish, encoded once.
var (
	routedTrue  = []byte(`{"routed":true}`)
	routedFalse = []byte(`{"routed":false}`)
)

func displayExchange(x string) string {
	if x == "" {
		return "amq.default"
	}
	return x
}

// publishOne publishes m and waits for the store (confirm semantics).
// Refusals come back as the core's errors; errorHandler maps them (one
// table, errorStatus) with Retry-After when retrying later is right.
func (r *rest) publishOne(c echo.Context, t *tenant, m *mapping.Message) (publishResult, error) {
	ch := t.channel()
	out, err := publishAndWait(ch, m, c.Request().Context(), r.ctx)
	t.release(ch)
	if err != nil {
		return publishResult{}, err
	}
	return publishResult{Routed: out.Routed}, nil
}

// batchItem is one message of POST /v1/publish.
type batchItem struct {
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	Properties      msgcodec.Props `json:"properties"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

// batchResult is the outcome of one item.
type batchResult struct {
	Routed bool   `json:"routed"`
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// restMaxBatch bounds the number of messages of one batch publish.
const restMaxBatch = 10000

// publishBatch is POST /v1/publish: a JSON array of messages, published in
// order on one channel, each answered once stored.
func (r *rest) publishBatch(c echo.Context) error {
	t, err := r.tenantFor(c, vhostParam(c))
	if err != nil {
		return err
	}
	max := r.s.router.MaxMessageSize()
	// The body the validator decoded is used as it is (one parse).
	tree, validated := validate.Body(c)
	var body []byte
	if !validated {
		if body, err = restBody(c, 2*max+1<<20); err != nil {
			return err
		}
	}
	// A whole batch under an alarm is refused at once, with the core's
	// answer (429, Retry-After).
	if err := r.s.router.AlarmRefusal(); err != nil {
		return err
	}
	var items []batchItem
	if validated {
		if items, err = oaBatchItems(tree); err != nil {
			return err
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&items); err != nil {
			return apiError(http.StatusBadRequest, "the body must be a JSON array of {exchange, routing_key, properties, payload, payload_encoding}: "+err.Error())
		}
	}
	if len(items) > restMaxBatch {
		return apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("a batch holds at most %d messages, got %d", restMaxBatch, len(items)))
	}
	results := make([]batchResult, len(items))
	dones := make([]chan mapping.Outcome, len(items))
	fail := func(i int, err error) {
		status, name := errorStatus(err)
		reason := err.Error()
		if he, ok := err.(*echo.HTTPError); ok {
			reason = fmt.Sprint(he.Message)
		}
		results[i] = batchResult{Status: status, Error: name, Reason: reason}
	}
	ch := t.channel()
	for i := range items {
		it := &items[i]
		payload, err := msgcodec.DecodePayload(it.Payload, it.PayloadEncoding, "payload")
		if err != nil {
			fail(i, err)
			continue
		}
		if int64(len(payload)) > max {
			fail(i, apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("payload of %d bytes is larger than the maximum of %d bytes", len(payload), max)))
			continue
		}
		props, err := msgcodec.PropsFromJSON(&it.Properties, 2, "properties")
		if err != nil {
			fail(i, err)
			continue
		}
		x := it.Exchange
		if x == "amq.default" {
			x = ""
		}
		m := &mapping.Message{Exchange: x, RoutingKey: it.RoutingKey, Properties: props, Body: payload}
		done := make(chan mapping.Outcome, 1)
		out := ch.Publish(m, func(o mapping.Outcome) { done <- o })
		if err := out.Err(); err != nil {
			fail(i, err)
			continue
		}
		ch.WaitFlow(c.Request().Context().Done())
		results[i] = batchResult{Routed: out.Routed, Status: http.StatusOK}
		dones[i] = done
	}
	t.release(ch)
	for i, done := range dones {
		if done == nil {
			continue
		}
		select {
		case o := <-done:
			if err := o.Err(); err != nil {
				fail(i, err)
			}
		case <-r.ctx.Done():
			return apiError(http.StatusServiceUnavailable, "warren is shutting down")
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"results": results})
}

// idempotencyWindow is how long an Idempotency-Key is remembered (as
// JetStream's default duplicate window).
const (
	idempotencyWindow = 2 * time.Minute
	idempotencyMax    = 100000
)

// idemCache deduplicates publishes by (user, vhost, Idempotency-Key): a
// retry within the window gets the first attempt's answer instead of
// publishing again. A failed attempt is forgotten so it can be retried.
type idemCache struct {
	mu    sync.Mutex
	m     map[idemKey]*idemEntry
	order []idemKey // insertion order, for expiry
}

type idemKey struct {
	t   tenantKey
	key string
}

type idemEntry struct {
	done    chan struct{}
	res     publishResult
	err     error
	expires time.Time
}

// idemPublishID is the PublishID stored with a message published with an
// Idempotency-Key: user and key (the vhost is the queue's). The core keeps
// it in the message's record, so that a restart does not forget the keys
// of stored messages (seed).
func idemPublishID(t tenantKey, key string) string { return t.user + "\x00" + key }

// seed remembers, as answered with routed=true, the Idempotency-Keys of
// messages stored before a restart and published less than a window ago
// (oldest first, as the core gives them). A retry of such a publish is
// then answered without publishing again. Call it before serving.
func (ic *idemCache) seed(recovered []mapping.RecoveredPublish) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.m == nil {
		ic.m = map[idemKey]*idemEntry{}
	}
	done := make(chan struct{})
	close(done)
	now := time.Now()
	for _, rp := range recovered {
		user, key, ok := strings.Cut(rp.ID, "\x00")
		expires := rp.Published.Add(idempotencyWindow)
		if !ok || !now.Before(expires) {
			continue
		}
		k := idemKey{tenantKey{user: user, vhost: rp.VHost}, key}
		if _, dup := ic.m[k]; dup {
			continue
		}
		ic.m[k] = &idemEntry{done: done, res: publishResult{Routed: true}, expires: expires}
		ic.order = append(ic.order, k)
	}
}

// do runs publish once per key within the window; replayed says the
// answer is a stored one.
func (ic *idemCache) do(t tenantKey, key string, publish func() (publishResult, error)) (publishResult, bool, error) {
	k := idemKey{t, key}
	now := time.Now()
	ic.mu.Lock()
	if ic.m == nil {
		ic.m = map[idemKey]*idemEntry{}
	}
	for len(ic.order) > 0 {
		old := ic.order[0]
		e := ic.m[old]
		if e != nil && now.Before(e.expires) && len(ic.order) < idempotencyMax {
			break
		}
		if e != nil && !now.Before(e.expires) || len(ic.order) >= idempotencyMax {
			delete(ic.m, old)
		}
		ic.order = ic.order[1:]
	}
	if e, ok := ic.m[k]; ok && now.Before(e.expires) {
		ic.mu.Unlock()
		<-e.done
		if e.err == nil {
			return e.res, true, nil
		}
		// The first attempt failed: try again ourselves.
		return ic.do(t, key, publish)
	}
	e := &idemEntry{done: make(chan struct{}), expires: now.Add(idempotencyWindow)}
	ic.m[k] = e
	ic.order = append(ic.order, k)
	ic.mu.Unlock()

	e.res, e.err = publish()
	if e.err != nil {
		ic.mu.Lock()
		if ic.m[k] == e {
			delete(ic.m, k)
		}
		ic.mu.Unlock()
	}
	close(e.done)
	return e.res, false, e.err
}
