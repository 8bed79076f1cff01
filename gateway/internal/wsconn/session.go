package wsconn

import (
	"context"
	"time"

	"github.com/gorilla/websocket"
)

// MaxSubscriptions bounds the subscriptions of one session (JSON and STOMP).
const MaxSubscriptions = 1024

// Start runs a session: the writer and the reader (read) each in a
// goroutine of their own, so that the HTTP handler can return and net/http
// drop its per-connection state (buffers, the handler's stack).
func (st *State) Start(wc *Conn, read func()) {
	if !st.add(wc) {
		wc.Kill(websocket.CloseGoingAway, "server shutting down")
		close(wc.readerDone)
		go wc.writePump()
		return
	}
	st.hooked.Do(func() {
		if st.deps.OnShutdown != nil {
			st.deps.OnShutdown(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				st.CloseAll(ctx)
			})
		}
	})
	go wc.writePump()
	// The reader: it owns the session's lifetime.
	go func() {
		defer st.remove(wc)
		read()
		close(wc.readerDone)
		wc.Kill(websocket.CloseNormalClosure, "")
		<-wc.writerDone
	}()
}
