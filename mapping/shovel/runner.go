package shovel

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// Shovel states, as RabbitMQ reports them.
const (
	StateStarting   = "starting"
	StateRunning    = "running"
	StateTerminated = "terminated"
)

// maxReconnectDelay caps the back-off between connection attempts (or the
// configured reconnect-delay, when that is longer).
const maxReconnectDelay = time.Minute

// nackPause is how long a message refused by an AMQP destination waits
// before it is requeued at the source.
const nackPause = 100 * time.Millisecond

// errComplete ends a run once src-delete-after is reached.
var errComplete = errors.New("src-delete-after reached")

// runner moves the messages of one shovel. It owns one goroutine (loop),
// stopped by cancel and awaited on done.
type runner struct {
	m                  *Manager
	vhost, name, owner string
	def                *Def
	raw                []byte
	cancel             context.CancelFunc
	done               chan struct{}
	remaining          int // src-delete-after left; only the runner's goroutine uses it

	mu     sync.Mutex
	state  string
	reason string
	since  time.Time
}

func (r *runner) set(state, reason string) {
	r.mu.Lock()
	r.state, r.reason, r.since = state, reason, time.Now()
	r.mu.Unlock()
}

func (r *runner) loop(ctx context.Context) {
	defer close(r.done)
	delay := r.def.ReconnectDelay
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !r.m.stillDefined(r) {
			return // the parameter went away (vhost deleted) while we waited
		}
		r.set(StateStarting, "")
		moved, err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errComplete) {
			r.m.completed(ctx, r)
			return
		}
		r.set(StateTerminated, err.Error())
		r.m.log.Warn("shovel stopped", "vhost", r.vhost, "shovel", r.name, "err", err)
		if r.def.ReconnectDelay == 0 {
			return // RabbitMQ: a reconnect-delay of 0 means do not reconnect
		}
		if moved > 0 {
			delay = r.def.ReconnectDelay
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, max(r.def.ReconnectDelay, maxReconnectDelay))
	}
}

type confirm struct {
	tag uint64
	ok  bool
}

// runOnce connects both ends and moves messages until one end fails, the
// shovel is stopped or src-delete-after is reached. It returns how many
// messages were settled at the source.
func (r *runner) runOnce(ctx context.Context) (settled int, err error) {
	src, err := r.openSource()
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	defer src.close()
	dst, err := r.openDest()
	if err != nil {
		return 0, fmt.Errorf("destination: %w", err)
	}
	defer dst.close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel() // first: ends webhook requests before dst.close waits for them

	// src-delete-after counts over the runner's life, not per connection:
	// what was settled before a reconnect is not moved again. queue-length
	// is the source's length when the runner first connected. remaining:
	// -1 not known yet, 0 no limit, else messages still to settle.
	if r.remaining < 0 {
		r.remaining = r.def.DeleteAfterN
		if r.def.DeleteAfter == "queue-length" {
			if r.remaining = src.length(); r.remaining == 0 {
				return 0, errComplete
			}
		}
	}
	limit := r.remaining
	if limit > 0 {
		// At errComplete the runner ends, so 0 never reads as "no limit".
		defer func() { r.remaining = limit - settled }()
	}
	r.set(StateRunning, "")
	// In-flight confirms are bounded by the prefetch (each is an unacked
	// source message), so done never blocks, even after this run ended.
	confirms := make(chan confirm, r.def.Prefetch+16)
	onConfirm := r.def.AckMode == AckOnConfirm
	sent := 0
	msgs := src.deliveries()
	for {
		in := msgs
		if limit > 0 && sent >= limit {
			in = nil // enough taken: wait for their confirms
		}
		select {
		case m, ok := <-in:
			if !ok {
				if e := src.err(); e != nil {
					return settled, fmt.Errorf("source: %w", e)
				}
				return settled, fmt.Errorf("source: the consumer was cancelled")
			}
			out := r.outgoing(m.msg)
			var done func(bool)
			if onConfirm {
				tag := m.tag
				done = func(ok bool) { confirms <- confirm{tag, ok} }
			}
			if err := dst.publish(runCtx, m, out, done); err != nil {
				return settled, fmt.Errorf("destination: %w", err)
			}
			sent++
			if r.def.AckMode == AckOnPublish {
				if err := src.ack(m.tag); err != nil {
					return settled, fmt.Errorf("source: %w", err)
				}
			}
			if !onConfirm {
				settled++
				if limit > 0 && settled >= limit {
					return settled, errComplete
				}
			}
		case c := <-confirms:
			if c.ok {
				if err := src.ack(c.tag); err != nil {
					return settled, fmt.Errorf("source: %w", err)
				}
				settled++
				if limit > 0 && settled >= limit {
					return settled, errComplete
				}
			} else {
				// Not confirmed: back to the source queue, whose delivery
				// limit and dead-letter exchange decide what happens. A
				// destination that refuses (a full queue with
				// reject-publish) would otherwise get the message straight
				// back: pause first (webhooks pause in their own back-off).
				if !r.def.IsHTTP() {
					select {
					case <-time.After(nackPause):
					case <-ctx.Done():
						return settled, ctx.Err()
					}
				}
				if err := src.nack(c.tag, true); err != nil {
					return settled, fmt.Errorf("source: %w", err)
				}
				sent--
			}
		case <-src.failed():
			return settled, fmt.Errorf("source: %w", src.err())
		case <-dst.failed():
			return settled, fmt.Errorf("destination: %w", dst.err())
		case <-ctx.Done():
			return settled, ctx.Err()
		}
	}
}

// localVHost: is uri this broker ("amqp://" without a host), and which
// vhost does it name (the path, "/" when empty)?
func localVHost(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "amqp" || u.Host != "" {
		return "", false
	}
	vh := u.Path
	if len(vh) > 0 && vh[0] == '/' {
		vh = vh[1:]
	}
	if vh == "" {
		vh = "/"
	}
	return vh, true
}

func (r *runner) openSource() (source, error) {
	if vh, ok := localVHost(r.def.SrcURIs[0]); ok {
		return newLocalSource(r.m.r, vh, r.owner, r.name, r.def)
	}
	return newRemoteSource(r.def, r.name)
}

func (r *runner) openDest() (dest, error) {
	if r.def.IsHTTP() {
		return newWebhook(r.def, r.m.log.With("vhost", r.vhost, "shovel", r.name))
	}
	if vh, ok := localVHost(r.def.DestURIs[0]); ok {
		return newLocalDest(r.m.r, vh, r.owner, r.name, r.def)
	}
	return newRemoteDest(r.def, r.name)
}

// outgoing is the message as sent on: a copy (the core's messages are
// shared and never changed) with the destination's exchange and routing
// key, and the forward headers when asked for.
func (r *runner) outgoing(m *mapping.Message) *mapping.Message {
	d := r.def
	out := &mapping.Message{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Properties: m.Properties, Body: m.Body}
	switch {
	case d.DestQueue != "":
		out.Exchange, out.RoutingKey = "", d.DestQueue
	case d.DestExchange != "":
		out.Exchange = d.DestExchange
		if d.DestExchangeKey != "" {
			out.RoutingKey = d.DestExchangeKey
		}
	}
	if d.ForwardHeaders || d.TimestampHdr {
		h := make(mapping.Table, len(m.Properties.Headers)+2)
		for k, v := range m.Properties.Headers {
			h[k] = v
		}
		if d.ForwardHeaders {
			// The newest hop first, as RabbitMQ prepends it.
			prev, _ := h["x-shovelled"].([]any)
			h["x-shovelled"] = append([]any{r.forwardHeader()}, prev...)
		}
		if d.TimestampHdr {
			h["x-shovelled-timestamp"] = time.Now().Unix()
		}
		out.Properties.Headers = h
		out.Properties.Flags |= mapping.FlagHeaders
	}
	return out
}

// forwardHeader is the x-shovelled entry RabbitMQ adds with
// dest-add-forward-headers.
func (r *runner) forwardHeader() mapping.Table {
	d := r.def
	t := mapping.Table{
		"shovel-type":  "dynamic",
		"shovel-name":  r.name,
		"shovel-vhost": r.vhost,
		"shovelled-by": r.m.node,
		"src-uri":      StripCredentials(d.SrcURIs[0]),
		"dest-uri":     StripCredentials(d.DestURIs[0]),
	}
	add := func(k, v string) {
		if v != "" {
			t[k] = v
		}
	}
	add("src-queue", d.SrcQueue)
	add("src-exchange", d.SrcExchange)
	add("src-exchange-key", d.SrcExchangeKey)
	add("dest-queue", d.DestQueue)
	add("dest-exchange", d.DestExchange)
	add("dest-exchange-key", d.DestExchangeKey)
	return t
}

// StripCredentials removes user and password from a URI, as RabbitMQ
// shows URIs in shovel statuses.
func StripCredentials(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
