package rest

// Server-Sent Events: GET /v1/events?queue=Q or ?exchange=X&binding_key=K.
//
// Each stream is a session with its own hidden connection and channel,
// consuming with manual acks and a prefetch window. Every message event
// has the id "<session>.<delivery tag>". Messages stay unacknowledged
// until the client confirms them the only way EventSource can: by
// reconnecting with Last-Event-ID, which acks every message up to that id
// and re-sends the ones after it (sent but not received). When the window
// is full the server ends the response itself (a checkpoint) so that the
// client reconnects and confirms. A detached session waits for its client
// for the resume window, then closes: its unacked messages go back to the
// queue (redelivered) and, for an exchange stream, its server-named queue
// is deleted. Nothing is lost when a connection drops.
//
// The session's sink buffers deliveries for the handler goroutine, which
// is the only writer of the response; when the buffer is full the sink
// refuses and the handler calls Channel.Resume after draining it.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

const (
	sseHeartbeat       = 15 * time.Second
	sseBuffer          = 1024 // deliveries buffered in the sink before it refuses
	defaultSSEPrefetch = 100
	maxSSEPrefetch     = 10000
	defaultResume      = 30 * time.Second
	maxResume          = 10 * time.Minute
	sseStealTimeout    = 5 * time.Second
)

type sseSession struct {
	id       string
	r        *rest
	user     string
	vhost    string
	what     string // the query the session serves, for resume checks
	queue    string
	conn     *mapping.Conn
	ch       *mapping.Channel
	prefetch int
	resume   time.Duration

	mu        sync.Mutex // the sink lock
	buf       []mapping.Delivery
	sent      []mapping.Delivery // written, not yet confirmed, by tag
	blocked   bool
	cancelled error // why the server cancelled the consumer
	closed    bool
	attached  bool
	detached  chan struct{} // closed when the current handler detaches
	steal     chan struct{} // closed to ask the current handler to detach
	stealing  bool          // steal is closed
	expiry    *time.Timer
	wake      chan struct{} // cap 1
}

// Deliver implements mapping.Sink (core locks held: no blocking).
func (s *sseSession) Deliver(d mapping.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, d)
	s.signal()
	if len(s.buf) >= sseBuffer {
		s.blocked = true
		return false
	}
	return true
}

// Cancelled implements mapping.Sink: the queue was deleted, or its home
// node is down.
func (s *sseSession) Cancelled(_ string, reason error) {
	s.mu.Lock()
	s.cancelled = reason
	s.signal()
	s.mu.Unlock()
}

func (s *sseSession) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends the session: unacked messages are requeued and an exclusive
// queue is deleted.
func (s *sseSession) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Unlock()
	s.r.sse.remove(s.id)
	s.conn.Close()
}

// events is GET /v1/events.
func (r *rest) events(c echo.Context) error {
	q := c.QueryParams()
	queue, exchange, bkey := q.Get("queue"), q.Get("exchange"), q.Get("binding_key")
	_, hasX := q["exchange"]
	switch {
	case queue != "" && hasX:
		return apiError(http.StatusBadRequest, "give either queue or exchange (with binding_key), not both")
	case queue == "" && !hasX:
		return apiError(http.StatusBadRequest, "give queue=Q to stream a queue, or exchange=X&binding_key=K to stream what an exchange routes")
	case queue != "" && q.Has("binding_key"):
		return apiError(http.StatusBadRequest, "binding_key goes with exchange, not with queue")
	}
	if exchange == "amq.default" {
		exchange = ""
	}
	prefetch, err := restInt(c, "prefetch", defaultSSEPrefetch, 1, maxSSEPrefetch)
	if err != nil {
		return err
	}
	resume, err := restDuration(c, "resume", defaultResume, 0, maxResume)
	if err != nil {
		return err
	}
	vhost := vhostParam(c)
	u, vh, err := r.access(c, vhost)
	if err != nil {
		return err
	}
	what := "queue\x00" + queue
	if queue == "" {
		what = "exchange\x00" + exchange + "\x00" + bkey
	}
	lastID := c.Request().Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get("last_event_id")
	}
	s, err := r.resumeSession(lastID, u.Name, vhost, what, resume)
	if err != nil {
		return err
	}
	if s == nil {
		if s, err = r.newSession(vh, u.Name, what, queue, exchange, bkey, prefetch, resume); err != nil {
			return err
		}
	}
	longRequest(c)
	return s.stream(c)
}

// resumeSession attaches to the session named by Last-Event-ID, confirming
// what the client received; the new request's resume window applies from
// now on. It returns nil when there is none to resume.
func (r *rest) resumeSession(lastID, user, vhost, what string, resume time.Duration) (*sseSession, error) {
	sid, tagStr, ok := strings.Cut(lastID, ".")
	if !ok {
		return nil, nil
	}
	tag, err := strconv.ParseUint(tagStr, 10, 64)
	if err != nil {
		return nil, nil
	}
	s := r.sse.get(sid)
	if s == nil || s.user != user || s.vhost != vhost || s.what != what {
		return nil, nil
	}
	s.mu.Lock()
	if s.attached {
		// The old connection is dead for the client but not yet for us.
		if !s.stealing {
			s.stealing = true
			close(s.steal)
		}
		detached := s.detached
		s.mu.Unlock()
		select {
		case <-detached:
		case <-time.After(sseStealTimeout):
			return nil, apiError(http.StatusConflict, "this event stream is still attached to another connection")
		}
		s.mu.Lock()
	}
	if s.closed || s.attached {
		s.mu.Unlock()
		return nil, nil
	}
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	// Confirm up to tag; re-send what was sent after it.
	n := 0
	for n < len(s.sent) && s.sent[n].Tag <= tag {
		n++
	}
	var ackTag uint64
	if n > 0 {
		ackTag = s.sent[n-1].Tag
	}
	s.buf = append(append([]mapping.Delivery(nil), s.sent[n:]...), s.buf...)
	s.sent = nil
	s.resume = resume
	s.attach()
	s.mu.Unlock()
	if ackTag != 0 {
		s.ch.Ack(ackTag, true)
	}
	return s, nil
}

// attach marks the session attached to a new handler; s.mu held.
func (s *sseSession) attach() {
	s.attached = true
	s.detached = make(chan struct{})
	s.steal = make(chan struct{})
	s.stealing = false
}

func (r *rest) newSession(vh *mapping.VHost, user, what, queue, exchange, bkey string, prefetch int, resume time.Duration) (*sseSession, error) {
	s := &sseSession{
		id: restRandomID(), r: r, user: user, vhost: vh.Name(), what: what, prefetch: prefetch, resume: resume,
		wake: make(chan struct{}, 1),
	}
	conn, err := r.s.router.Connect(user, vh.Name(), mapping.ConnInfo{Name: "SSE " + user + "@" + vh.Name() + " " + s.id, Protocol: "HTTP", Hidden: true})
	if err != nil {
		return nil, coreError(err)
	}
	s.conn = conn
	s.ch = s.conn.OpenChannel(r.nextChannel(), s)
	fail := func(err error) (*sseSession, error) {
		s.conn.Close()
		return nil, coreError(err)
	}
	if queue == "" {
		qi, err := s.ch.DeclareQueue(mapping.QueueSpec{Exclusive: true, AutoDelete: true}, false)
		if err != nil {
			return fail(err)
		}
		queue = qi.Name
		if err := s.ch.BindQueue(queue, exchange, bkey, nil); err != nil {
			return fail(err)
		}
	}
	s.queue = queue
	s.ch.SetPrefetch(prefetch, false)
	s.mu.Lock()
	s.attach()
	s.mu.Unlock()
	r.sse.add(s.id, s)
	if err := s.ch.Consume(queue, "warren.sse-"+s.id, false, false, nil, func(string) {}); err != nil {
		r.sse.remove(s.id)
		return fail(err)
	}
	return s, nil
}

// stream writes events until the client goes, the window is full (a
// checkpoint), the queue is deleted or the server shuts down. It runs on
// the request goroutine, the only writer of the response.
func (s *sseSession) stream(c echo.Context) error {
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Warren-Session", s.id)
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	ready, _ := json.Marshal(map[string]any{"session": s.id, "queue": s.queue, "prefetch": s.prefetch})
	fmt.Fprintf(bw, "retry: 1000\nevent: ready\ndata: %s\n\n", ready)
	ctx := c.Request().Context()
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	s.mu.Lock()
	steal := s.steal
	s.mu.Unlock()

	endSession := false
	defer func() { s.detach(endSession) }()
	for {
		s.mu.Lock()
		batch := s.buf
		s.buf = nil
		wasBlocked := s.blocked
		s.blocked = false
		cancelled := s.cancelled
		s.sent = append(s.sent, batch...)
		windowFull := len(s.sent) >= s.prefetch
		s.mu.Unlock()
		for _, d := range batch {
			data, err := json.Marshal(toJSONMessage(d))
			if err != nil {
				return nil
			}
			fmt.Fprintf(bw, "id: %s.%d\nevent: message\ndata: %s\n\n", s.id, d.Tag, data)
		}
		if err := bw.Flush(); err != nil {
			return nil
		}
		w.Flush()
		if wasBlocked {
			s.ch.Resume()
		}
		if cancelled != nil {
			endSession = true
			data, _ := json.Marshal(map[string]string{"reason": cancelled.Error()})
			fmt.Fprintf(bw, "event: cancelled\ndata: %s\n\n", data)
			bw.Flush()
			w.Flush()
			return nil
		}
		if windowFull && len(batch) == 0 {
			// Every message of the window is out: end the response so
			// the client reconnects with Last-Event-ID and confirms them.
			fmt.Fprintf(bw, "retry: 10\nevent: checkpoint\ndata: {}\n\n")
			bw.Flush()
			w.Flush()
			return nil
		}
		if windowFull {
			continue // write the checkpoint after the batch went out
		}
		select {
		case <-s.wake:
		case <-heartbeat.C:
			if _, err := bw.WriteString(": ping\n\n"); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		case <-steal:
			return nil
		case <-s.r.ctx.Done():
			endSession = true
			return nil
		}
	}
}

// detach ends a handler's hold on the session: the session waits for a
// resume, or closes now.
func (s *sseSession) detach(end bool) {
	s.mu.Lock()
	s.attached = false
	close(s.detached)
	if end || s.resume == 0 || s.closed {
		s.mu.Unlock()
		s.close()
		return
	}
	s.expiry = time.AfterFunc(s.resume, s.close)
	s.mu.Unlock()
}
