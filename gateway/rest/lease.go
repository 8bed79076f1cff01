package rest

// Leases: messages taken with POST /v1/queues/{queue}/get?ack=manual stay
// unacknowledged on one long-lived hidden channel per (user, vhost), the
// lease channel, until an ack token settles them or the lease expires
// (then they are requeued with redelivered=true, as when an AMQP channel
// closes).
//
// Ack tokens are base64url of
//
//	version(1) | channel id(8) | delivery tag(8) | vhost | HMAC-SHA256(16)
//
// where the MAC covers everything before it and the user name, under a
// random per-process key: a token cannot be forged or used by another
// user, and does not depend on the HTTP connection.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping"
)

const (
	tokenVersion = 1
	tokenMACLen  = 16
	defaultLease = 30 * time.Second
	minLease     = time.Second
	maxLease     = 12 * time.Hour
)

// leaseChan is the lease channel of a tenant. Its sink also receives the
// deliveries of long-poll consumers (see poll).
type leaseChan struct {
	t  *tenant
	id uint64
	ch *mapping.Channel

	consumeMu sync.Mutex // SetPrefetch and Consume go together

	mu      sync.Mutex // the sink lock: last in the core's lock order
	leases  map[uint64]*lease
	waiters map[string]*pollWaiter
	closed  bool
}

type lease struct {
	tag     uint64
	queue   string
	timer   *time.Timer
	expires time.Time
}

// pollWaiter collects the deliveries of one long-poll consumer.
type pollWaiter struct {
	got       []mapping.Delivery
	cancelled error         // why the core cancelled the consumer
	wake      chan struct{} // cap 1
}

// leaseChannel returns the tenant's lease channel, opening it on first use.
func (t *tenant) leaseChannel() *leaseChan {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leases == nil {
		var b [8]byte
		rand.Read(b[:])
		l := &leaseChan{t: t, id: binary.BigEndian.Uint64(b[:]), leases: map[uint64]*lease{}, waiters: map[string]*pollWaiter{}}
		l.ch = t.conn.OpenChannel(t.r.nextChannel(), l)
		t.leases = l
	}
	return t.leases
}

// Deliver implements mapping.Sink (core locks held: no blocking, no core
// calls). Deliveries of a consumer whose waiter is gone cannot happen:
// a waiter is removed only after its consumer was cancelled.
func (l *leaseChan) Deliver(d mapping.Delivery) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.waiters[d.ConsumerTag]; w != nil {
		w.got = append(w.got, d)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Cancelled implements mapping.Sink: the polled queue was deleted, or
// its home node is down; the waiter wakes up and answers what it has,
// or the reason when it has nothing.
func (l *leaseChan) Cancelled(tag string, reason error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.waiters[tag]; w != nil {
		w.cancelled = reason
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// add leases a delivery for d and returns its token and expiry.
func (l *leaseChan) add(tag uint64, queue string, d time.Duration) (string, time.Time) {
	ls := &lease{tag: tag, queue: queue, expires: time.Now().Add(d)}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.leases[tag] = ls
		ls.timer = time.AfterFunc(d, func() { l.expire(ls) })
	}
	l.mu.Unlock()
	return l.t.r.token(l.t.key, l.id, tag), ls.expires
}

// expire runs on the lease's timer goroutine: requeue the message.
func (l *leaseChan) expire(ls *lease) {
	l.mu.Lock()
	if l.leases[ls.tag] != ls {
		l.mu.Unlock()
		return
	}
	delete(l.leases, ls.tag)
	l.mu.Unlock()
	l.ch.Nack(ls.tag, false, true)
}

// take removes a live lease for settling, or explains why there is none.
func (l *leaseChan) take(tag uint64) (*lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.leases[tag]
	if ls == nil || !ls.timer.Stop() {
		return nil, leaseGone()
	}
	delete(l.leases, tag)
	return ls, nil
}

// extend moves a lease's expiry to now+d.
func (l *leaseChan) extend(tag uint64, d time.Duration) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.leases[tag]
	if ls == nil || !ls.timer.Stop() {
		return time.Time{}, leaseGone()
	}
	ls.expires = time.Now().Add(d)
	ls.timer = time.AfterFunc(d, func() { l.expire(ls) })
	return ls.expires, nil
}

func leaseGone() error {
	return apiError(http.StatusConflict, "this lease has expired or was already settled: the message went back to its queue (or was acked); get it again")
}

// close requeues every leased message.
func (l *leaseChan) close() {
	l.mu.Lock()
	l.closed = true
	for _, ls := range l.leases {
		ls.timer.Stop()
	}
	l.leases = map[uint64]*lease{}
	l.mu.Unlock()
	l.ch.Close()
}

// token makes the ack token of one delivery.
func (r *rest) token(t tenantKey, chanID, tag uint64) string {
	b := make([]byte, 0, 17+len(t.vhost)+tokenMACLen)
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, chanID)
	b = binary.BigEndian.AppendUint64(b, tag)
	b = append(b, t.vhost...)
	b = append(b, r.mac(b, t.user)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (r *rest) mac(msg []byte, user string) []byte {
	h := hmac.New(sha256.New, r.key[:])
	h.Write(msg)
	h.Write([]byte{0})
	h.Write([]byte(user))
	return h.Sum(nil)[:tokenMACLen]
}

// parseToken checks a token for user and returns its vhost, channel id
// and delivery tag.
func (r *rest) parseToken(tok, user string) (vhost string, chanID, tag uint64, err error) {
	bad := apiError(http.StatusBadRequest, "invalid ack token: it is damaged, or was issued to another user or by an earlier run of the server")
	b, derr := base64.RawURLEncoding.DecodeString(tok)
	if derr != nil || len(b) < 17+tokenMACLen || b[0] != tokenVersion {
		return "", 0, 0, bad
	}
	msg, sum := b[:len(b)-tokenMACLen], b[len(b)-tokenMACLen:]
	if !hmac.Equal(sum, r.mac(msg, user)) {
		return "", 0, 0, bad
	}
	return string(msg[17:]), binary.BigEndian.Uint64(msg[1:9]), binary.BigEndian.Uint64(msg[9:17]), nil
}
