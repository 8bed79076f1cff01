package shovel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// Webhook header names besides the X-Amqp-* properties of msgcodec.
const (
	HeaderDeliveryCount = "X-Amqp-Delivery-Count"
	HeaderRedelivered   = "X-Amqp-Redelivered"
	HeaderExchange      = "X-Amqp-Exchange"
	HeaderRoutingKey    = "X-Amqp-Routing-Key"
)

// webhook POSTs each message to an HTTP(S) endpoint. A 2xx answer
// confirms the message; anything else (another status, a timeout, a
// refused connection) holds it for the back-off delay and then reports it
// not confirmed, which the runner turns into a requeue at the source: the
// queue's x-delivery-limit and dead-letter exchange decide when it stops.
// Requests in flight are bounded by the semaphore (prefetch-count); with
// acknowledgements the source's prefetch bounds them the same way.
type webhook struct {
	d      *Def
	log    *slog.Logger
	target string // the URL without credentials
	user   *url.Userinfo
	client *http.Client
	sem    chan struct{}
	dead   chan struct{}

	mu       sync.Mutex
	failures int // consecutive failures, for the back-off
	wg       sync.WaitGroup
}

func newWebhook(d *Def, log *slog.Logger) (*webhook, error) {
	u, err := url.Parse(d.DestURIs[0])
	if err != nil {
		return nil, err
	}
	w := &webhook{d: d, log: log, user: u.User, sem: make(chan struct{}, d.Prefetch), dead: make(chan struct{})}
	u.User = nil
	w.target = u.String()
	// A transport per shovel, so that closing it leaves no idle
	// connections (and their goroutines) behind.
	// Redirects are not followed: a client would turn the POST into a GET
	// of another URL, whose 2xx would ack a message nobody received. A
	// 3xx is an answer like any other non-2xx.
	w.client = &http.Client{
		Timeout:       d.HTTPTimeout,
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

func (w *webhook) publish(ctx context.Context, in inMsg, m *mapping.Message, done func(bool)) error {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		err := w.post(ctx, in, m)
		if done == nil {
			if err != nil && ctx.Err() == nil {
				w.log.Warn("webhook delivery failed; the message was already acked (ack-mode "+w.d.AckMode+") and is dropped", "url", w.target, "message_id", m.Properties.MessageID, "err", err)
			}
			return
		}
		if err == nil {
			w.mu.Lock()
			w.failures = 0
			w.mu.Unlock()
			done(true)
			return
		}
		if ctx.Err() != nil {
			done(false) // the shovel stops: the source requeues it anyway
			return
		}
		delay := w.backoff()
		// The shovel stays "running" while its endpoint fails; the log
		// says why (once per attempt, so the back-off bounds it).
		w.log.Warn("webhook delivery failed; the message goes back to its queue", "url", w.target, "message_id", m.Properties.MessageID, "attempt", in.attempt, "retry_in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		done(false)
	}()
	return nil
}

// backoff doubles the delay with each consecutive failure, from
// dest-http-retry-delay up to dest-http-retry-max-delay.
func (w *webhook) backoff() time.Duration {
	w.mu.Lock()
	w.failures++
	n := w.failures
	w.mu.Unlock()
	delay := w.d.RetryDelay
	for i := 1; i < n && delay < w.d.RetryMaxDelay; i++ {
		delay *= 2
	}
	return min(delay, w.d.RetryMaxDelay)
}

func (w *webhook) post(ctx context.Context, in inMsg, m *mapping.Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.target, bytes.NewReader(m.Body))
	if err != nil {
		return err
	}
	msgcodec.SetHeaders(req.Header, &m.Properties)
	req.Header.Set(HeaderExchange, m.Exchange)
	req.Header.Set(HeaderRoutingKey, m.RoutingKey)
	req.Header.Set(HeaderDeliveryCount, strconv.Itoa(max(in.attempt, 1)))
	req.Header.Set(HeaderRedelivered, strconv.FormatBool(in.redeliv))
	req.Header.Set("User-Agent", "Warren-Shovel")
	if w.d.SignatureSecret != "" {
		req.Header.Set(w.d.SignatureHeader, Sign(w.d.SignatureSecret, m.Body))
	}
	if w.user != nil {
		pass, _ := w.user.Password()
		req.SetBasicAuth(w.user.Username(), pass)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", w.target, resp.Status)
	}
	return nil
}

// Sign is the signature header's value: "sha256=" and the hex HMAC-SHA256
// of the body under the shared secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *webhook) failed() <-chan struct{} { return w.dead }
func (w *webhook) err() error              { return nil }

// close waits for the requests in flight (their context ends with the
// runner's, so this is quick) and drops kept-alive connections.
func (w *webhook) close() {
	w.wg.Wait()
	w.client.CloseIdleConnections()
}
