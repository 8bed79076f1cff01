package gateway

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/warrenmq/warren/mapping"
)

// WebSocket close codes of both protocols (4000-4999 are the
// application's range; clients decide from the code whether to reconnect).
const (
	closeAuthFailed   = 4001 // bad credentials or expired token: get new ones, then reconnect
	closeProtocol     = 4002 // the client broke the protocol: do not retry unchanged
	closeVHostRefused = 4003 // no such vhost or no access to it
	closeTooSlow      = 4008 // the client did not read its messages: reconnect, read faster
	closeForced       = 4320 // closed by an operator (AMQP 320 CONNECTION_FORCED): reconnect
)

// Transport limits and timings.
const (
	wsWriteWait  = 10 * time.Second // a write that takes longer ends the session
	wsPongWait   = 60 * time.Second // silence (no frame, no pong) that ends the session
	wsPingPeriod = 25 * time.Second // server pings; must be < wsPongWait
	wsAuthWait   = 10 * time.Second // time to send the first (auth/CONNECT) frame

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
	sub   wsDeliveryEncoder
	d     mapping.Delivery
}

// wsDeliveryEncoder turns a delivery into one frame of its protocol.
type wsDeliveryEncoder interface {
	encodeDelivery(dst []byte, d mapping.Delivery) []byte
}

// wsConn is the transport half of a session: one WebSocket connection
// with a bounded send queue.
//
// Goroutines: the session's reader runs in the HTTP handler goroutine and
// is the only reader of the socket; writePump runs in its own goroutine
// and is the only writer. Anyone may queue (send, deliver) or end the
// session (kill); none of them blocks.
type wsConn struct {
	ws      *websocket.Conn
	msgType int

	// heartbeat is written every beat without other traffic (STOMP
	// heart-beats; setBeat starts them); farewell, when set, makes the
	// last frame before the close frame (a STOMP ERROR). Both are set
	// before the writer starts.
	heartbeat []byte
	beatSet   chan time.Duration
	farewell  func(code int, text string) []byte

	mu        sync.Mutex
	queue     []wsOutItem
	spare     []wsOutItem
	bytes     int
	refused   map[*mapping.Channel]struct{}
	dead      bool
	closeCode int
	closeText string

	wake       chan struct{}
	dying      chan struct{} // closed by kill
	writerDone chan struct{} // closed when writePump has returned
	readerDone chan struct{} // closed by the session when its reader returned
}

func newWSConn(ws *websocket.Conn, msgType int) *wsConn {
	return &wsConn{
		ws:         ws,
		msgType:    msgType,
		refused:    map[*mapping.Channel]struct{}{},
		wake:       make(chan struct{}, 1),
		dying:      make(chan struct{}),
		writerDone: make(chan struct{}),
		readerDone: make(chan struct{}),
		beatSet:    make(chan time.Duration, 1),
	}
}

func (wc *wsConn) signal() {
	select {
	case wc.wake <- struct{}{}:
	default:
	}
}

// send queues an encoded frame. It reports false once the session is
// ending.
func (wc *wsConn) send(frame []byte) bool {
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
		wc.kill(closeTooSlow, "the client does not read its messages: send backlog exceeded")
		return false
	}
	wc.signal()
	return true
}

// deliver queues a delivery of ch and reports whether there is room for
// more (mapping.Sink semantics). It is called with core locks held.
func (wc *wsConn) deliver(ch *mapping.Channel, enc wsDeliveryEncoder, d mapping.Delivery) bool {
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
		wc.kill(closeTooSlow, "the client does not read its messages: send backlog exceeded")
	}
	wc.signal()
	return room
}

// kill ends the session: the writer sends the close frame (after a
// farewell frame, if the protocol has one) and closes the socket, which
// ends the reader. The first call decides the close code.
func (wc *wsConn) kill(code int, text string) {
	wc.mu.Lock()
	if wc.dead {
		wc.mu.Unlock()
		return
	}
	wc.dead = true
	wc.closeCode, wc.closeText = code, text
	wc.mu.Unlock()
	close(wc.dying)
}

func (wc *wsConn) isDead() bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.dead
}

// take hands the queued frames to the writer.
func (wc *wsConn) take() []wsOutItem {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	q := wc.queue
	wc.queue = wc.spare[:0]
	wc.spare = nil
	return q
}

// written gives a written batch back and returns the channels to resume.
func (wc *wsConn) written(items []wsOutItem, n int) []*mapping.Channel {
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

// forget drops a channel from the resume set (it is closing).
func (wc *wsConn) forget(ch *mapping.Channel) {
	wc.mu.Lock()
	delete(wc.refused, ch)
	wc.mu.Unlock()
}

// writePump runs in its own goroutine; it is the only writer of the
// socket. It returns after kill, having sent the close frame and closed
// the socket.
func (wc *wsConn) writePump() {
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
			wc.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := wc.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				wc.kill(websocket.CloseAbnormalClosure, "write failed")
				wc.ws.Close()
				return
			}
			continue
		case <-beat:
			if !wrote {
				wc.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
				if err := wc.ws.WriteMessage(wc.msgType, wc.heartbeat); err != nil {
					wc.kill(websocket.CloseAbnormalClosure, "write failed")
					wc.ws.Close()
					return
				}
			}
			wrote = false
			continue
		case <-wc.dying:
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
				buf = it.sub.encodeDelivery(buf[:0], it.d)
				frame = buf
				n += len(it.d.Message.Body) + wsDeliveryOverhead
			} else {
				n += len(frame)
			}
			if now := time.Now(); now.Sub(armed) > time.Second {
				armed = now
				wc.ws.SetWriteDeadline(now.Add(wsWriteWait))
			}
			if err := wc.ws.WriteMessage(wc.msgType, frame); err != nil {
				wc.kill(closeTooSlow, "write failed: "+err.Error())
				wc.ws.Close()
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
func (wc *wsConn) finish(buf []byte) {
	wc.mu.Lock()
	code, text := wc.closeCode, wc.closeText
	wc.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	wc.ws.SetWriteDeadline(deadline)
	if code != closeTooSlow && code != websocket.CloseAbnormalClosure {
		for _, it := range wc.take() {
			frame := it.frame
			if it.sub != nil {
				buf = it.sub.encodeDelivery(buf[:0], it.d)
				frame = buf
			}
			if wc.ws.WriteMessage(wc.msgType, frame) != nil {
				break
			}
		}
		if wc.farewell != nil {
			if f := wc.farewell(code, text); f != nil {
				wc.ws.WriteMessage(wc.msgType, f)
			}
		}
	}
	if code != websocket.CloseAbnormalClosure {
		if len(text) > 120 { // a close frame's reason fits in 123 bytes
			text = text[:120]
		}
		if wc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline) == nil {
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
	wc.ws.Close()
	wc.take() // drop references to messages
}

// setBeat starts heart-beats every d.
func (wc *wsConn) setBeat(d time.Duration) {
	if d > 0 {
		select {
		case wc.beatSet <- d:
		default:
		}
	}
}

// alive extends the read deadline; every frame and pong counts as
// a sign of life.
func (wc *wsConn) alive(wait time.Duration) {
	wc.ws.SetReadDeadline(time.Now().Add(wait))
}
