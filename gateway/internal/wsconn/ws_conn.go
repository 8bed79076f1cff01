package wsconn

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/warrenmq/warren/mapping"
)

// WebSocket close codes of both protocols (4000-4999 are the
// application's range; clients decide from the code whether to reconnect).
const (
	CloseAuthFailed   = 4001 // bad credentials or expired token: get new ones, then reconnect
	CloseProtocol     = 4002 // the client broke the protocol: do not retry unchanged
	CloseVHostRefused = 4003 // no such vhost or no access to it
	CloseTooSlow      = 4008 // the client did not read its messages: reconnect, read faster
	CloseForced       = 4320 // closed by an operator (AMQP 320 CONNECTION_FORCED): reconnect
)

// Transport limits and timings.
const (
	wsWriteWait  = 10 * time.Second // a write that takes longer ends the session
	PongWait     = 60 * time.Second // silence (no frame, no pong) that ends the session
	wsPingPeriod = 25 * time.Second // server pings; must be < PongWait
	AuthWait     = 10 * time.Second // time to send the first (auth/CONNECT) frame

	// The send queue: above outHighWater bytes the core is told to stop
	// delivering (Sink.Deliver returns false); below outLowWater it is
	// resumed. Replies and control frames still queue; past outHardLimit
	// bytes or outMaxItems frames the client is disconnected (4008).
	outHighWater = 512 << 10
	outLowWater  = 128 << 10
	outHardLimit = 8 << 20
	outMaxItems  = 8192

	wsDeliveryOverhead = 512 // estimated JSON/STOMP bytes around a body
)

// wsOutItem is one frame waiting for the writer: either already encoded or
// a delivery that the writer encodes (deliveries arrive with core locks
// held, so they are only queued there).
type wsOutItem struct {
	frame []byte
	sub   DeliveryEncoder
	d     mapping.Delivery
}

// DeliveryEncoder turns a delivery into one frame of its protocol.
type DeliveryEncoder interface {
	EncodeDelivery(dst []byte, d mapping.Delivery) []byte
}

// Conn is the transport half of a session: one WebSocket connection
// with a bounded send queue.
//
// Goroutines: the session's reader runs in the HTTP handler goroutine and
// is the only reader of the socket; writePump runs in its own goroutine
// and is the only writer. Anyone may queue (send, deliver) or end the
// session (kill); none of them blocks.
type Conn struct {
	WS      *websocket.Conn
	msgType int

	// heartbeat is written every beat without other traffic (STOMP
	// heart-beats; setBeat starts them); farewell, when set, makes the
	// last frame before the close frame (a STOMP ERROR). Both are set
	// before the writer starts.
	Heartbeat []byte
	beatSet   chan time.Duration
	Farewell  func(code int, text string) []byte

	mu        sync.Mutex
	queue     []wsOutItem
	spare     []wsOutItem
	bytes     int
	refused   map[*mapping.Channel]struct{}
	dead      bool
	closeCode int
	closeText string

	wake       chan struct{}
	Dying      chan struct{} // closed by kill
	writerDone chan struct{} // closed when writePump has returned
	readerDone chan struct{} // closed by the session when its reader returned
}

func New(ws *websocket.Conn, msgType int) *Conn {
	return &Conn{
		WS:         ws,
		msgType:    msgType,
		refused:    map[*mapping.Channel]struct{}{},
		wake:       make(chan struct{}, 1),
		Dying:      make(chan struct{}),
		writerDone: make(chan struct{}),
		readerDone: make(chan struct{}),
		beatSet:    make(chan time.Duration, 1),
	}
}

func (wc *Conn) signal() {
	select {
	case wc.wake <- struct{}{}:
	default:
	}
}

// Send queues an encoded frame. It reports false once the session is
// ending.
func (wc *Conn) Send(frame []byte) bool {
	wc.mu.Lock()
	if wc.dead {
		wc.mu.Unlock()
		return false
	}
	wc.queue = append(wc.queue, wsOutItem{frame: frame})
	wc.bytes += len(frame)
	over := wc.bytes > outHardLimit || len(wc.queue) > outMaxItems
	wc.mu.Unlock()
	if over {
		wc.Kill(CloseTooSlow, "the client does not read its messages: send backlog exceeded")
		return false
	}
	wc.signal()
	return true
}

// Deliver queues a delivery of ch and reports whether there is room for
// more (mapping.Sink semantics). It is called with core locks held.
func (wc *Conn) Deliver(ch *mapping.Channel, enc DeliveryEncoder, d mapping.Delivery) bool {
	wc.mu.Lock()
	if wc.dead {
		wc.mu.Unlock()
		return true // dropped: the channel is closing and requeues it
	}
	wc.queue = append(wc.queue, wsOutItem{sub: enc, d: d})
	wc.bytes += len(d.Message.Body) + wsDeliveryOverhead
	room := wc.bytes < outHighWater
	if !room && ch != nil {
		wc.refused[ch] = struct{}{}
	}
	over := wc.bytes > outHardLimit || len(wc.queue) > outMaxItems
	wc.mu.Unlock()
	if over {
		wc.Kill(CloseTooSlow, "the client does not read its messages: send backlog exceeded")
	}
	wc.signal()
	return room
}

// Kill ends the session: the writer sends the close frame (after a
// farewell frame, if the protocol has one) and closes the socket, which
// ends the reader. The first call decides the close code.
func (wc *Conn) Kill(code int, text string) {
	wc.mu.Lock()
	if wc.dead {
		wc.mu.Unlock()
		return
	}
	wc.dead = true
	wc.closeCode, wc.closeText = code, text
	wc.mu.Unlock()
	close(wc.Dying)
}

func (wc *Conn) IsDead() bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.dead
}

// take hands the queued frames to the writer.
func (wc *Conn) take() []wsOutItem {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	q := wc.queue
	wc.queue = wc.spare[:0]
	wc.spare = nil
	return q
}

// written gives a written batch back and returns the channels to resume.
func (wc *Conn) written(items []wsOutItem, n int) []*mapping.Channel {
	clear(items)
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.spare == nil && cap(items) <= 1024 {
		wc.spare = items[:0]
	}
	wc.bytes -= n
	if wc.bytes < 0 {
		wc.bytes = 0
	}
	if wc.bytes > outLowWater || len(wc.refused) == 0 {
		return nil
	}
	chans := make([]*mapping.Channel, 0, len(wc.refused))
	for ch := range wc.refused {
		chans = append(chans, ch)
	}
	clear(wc.refused)
	return chans
}

// Forget drops a channel from the resume set (it is closing).
func (wc *Conn) Forget(ch *mapping.Channel) {
	wc.mu.Lock()
	delete(wc.refused, ch)
	wc.mu.Unlock()
}

// writePump runs in its own goroutine; it is the only writer of the
// socket. It returns after kill, having sent the close frame and closed
// the socket.
func (wc *Conn) writePump() {
	defer close(wc.writerDone)
	ping := time.NewTicker(wsPingPeriod)
	defer ping.Stop()
	var beat <-chan time.Time
	var beatTicker *time.Ticker
	defer func() {
		if beatTicker != nil {
			beatTicker.Stop()
		}
	}()
	var buf []byte
	wrote := false
	for {
		select {
		case <-wc.wake:
		case d := <-wc.beatSet:
			if beatTicker != nil {
				beatTicker.Stop()
			}
			beatTicker = time.NewTicker(d)
			beat = beatTicker.C
			continue
		case <-ping.C:
			wc.WS.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := wc.WS.WriteMessage(websocket.PingMessage, nil); err != nil {
				wc.Kill(websocket.CloseAbnormalClosure, "write failed")
				wc.WS.Close()
				return
			}
			continue
		case <-beat:
			if !wrote {
				wc.WS.SetWriteDeadline(time.Now().Add(wsWriteWait))
				if err := wc.WS.WriteMessage(wc.msgType, wc.Heartbeat); err != nil {
					wc.Kill(websocket.CloseAbnormalClosure, "write failed")
					wc.WS.Close()
					return
				}
			}
			wrote = false
			continue
		case <-wc.Dying:
			wc.finish(buf)
			return
		}
		items := wc.take()
		n := 0
		// One deadline per second of writing rather than one per frame:
		// arming the timer costs about as much as a small frame's copy,
		// and a fan-out wakes thousands of writers at once.
		var armed time.Time
		for i := range items {
			it := &items[i]
			frame := it.frame
			if it.sub != nil {
				buf = it.sub.EncodeDelivery(buf[:0], it.d)
				frame = buf
				n += len(it.d.Message.Body) + wsDeliveryOverhead
			} else {
				n += len(frame)
			}
			if now := time.Now(); now.Sub(armed) > time.Second {
				armed = now
				wc.WS.SetWriteDeadline(now.Add(wsWriteWait))
			}
			if err := wc.WS.WriteMessage(wc.msgType, frame); err != nil {
				wc.Kill(CloseTooSlow, "write failed: "+err.Error())
				wc.WS.Close()
				return
			}
			wrote = true
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
		for _, ch := range wc.written(items, n) {
			ch.Resume()
		}
	}
}

// finish flushes what is queued (unless the client is too slow to take
// it), then the farewell and close frames, and closes the socket.
func (wc *Conn) finish(buf []byte) {
	wc.mu.Lock()
	code, text := wc.closeCode, wc.closeText
	wc.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	wc.WS.SetWriteDeadline(deadline)
	if code != CloseTooSlow && code != websocket.CloseAbnormalClosure {
		for _, it := range wc.take() {
			frame := it.frame
			if it.sub != nil {
				buf = it.sub.EncodeDelivery(buf[:0], it.d)
				frame = buf
			}
			if wc.WS.WriteMessage(wc.msgType, frame) != nil {
				break
			}
		}
		if wc.Farewell != nil {
			if f := wc.Farewell(code, text); f != nil {
				wc.WS.WriteMessage(wc.msgType, f)
			}
		}
	}
	if code != websocket.CloseAbnormalClosure {
		if len(text) > 120 { // a close frame's reason fits in 123 bytes
			text = text[:120]
		}
		if wc.WS.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline) == nil {
			// Let the client answer the close before the socket goes, so
			// that unread input does not turn the close into a reset.
			t := time.NewTimer(time.Second)
			select {
			case <-wc.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	wc.WS.Close()
	wc.take() // drop references to messages
}

// SetBeat starts heart-beats every d.
func (wc *Conn) SetBeat(d time.Duration) {
	if d > 0 {
		select {
		case wc.beatSet <- d:
		default:
		}
	}
}

// Alive extends the read deadline; every frame and pong counts as
// a sign of life.
func (wc *Conn) Alive(wait time.Duration) {
	wc.WS.SetReadDeadline(time.Now().Add(wait))
}

// Queued returns the encoded frames waiting for the writer, for the
// protocols' tests.
func (wc *Conn) Queued() []string {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	var out []string
	for _, it := range wc.queue {
		out = append(out, string(it.frame))
	}
	return out
}
