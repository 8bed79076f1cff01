package amqpws

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// streamEchoServer serves WebSockets whose wsStream is read in reads of
// 1..7 bytes (so message boundaries fall anywhere in a read), writing back
// what each read returned; the error that ended the reading (io.EOF after
// the peer's close frame) is posted on streamEnd.
var (
	streamEnd        = make(chan error, 1)
	streamEchoServer = sync.OnceValue(func() *httptest.Server {
		up := websocket.Upgrader{}
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			s := NewWebSocketConn(ws)
			defer s.Close()
			s.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 7)
			for i := 0; ; i++ {
				n, err := s.Read(buf[:1+i%7])
				if n > 0 {
					s.Write(buf[:n])
				}
				if err != nil {
					streamEnd <- err
					return
				}
			}
		}))
	})
)

// sendSplit sends data as binary messages whose sizes cycle through
// sizes (0 sends an empty message), reads back what the server read, then
// closes and checks that the server's stream ended with io.EOF.
func sendSplit(t testing.TB, data, sizes []byte) []byte {
	t.Helper()
	srv := streamEchoServer()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if !slices.ContainsFunc(sizes, func(n byte) bool { return n > 0 }) {
		sizes = append(slices.Clone(sizes), 255) // else it would never end
	}
	// Read the echo while writing: the server stops reading when its
	// writes are not read.
	type echo struct {
		got []byte
		err error
	}
	echoed := make(chan echo, 1)
	go func() {
		var e echo
		for len(e.got) < len(data) {
			typ, m, err := ws.ReadMessage()
			if err != nil {
				e.err = fmt.Errorf("after %d of %d bytes echoed: %w", len(e.got), len(data), err)
				break
			}
			if typ != websocket.BinaryMessage {
				e.err = fmt.Errorf("echo is message type %d, want binary", typ)
				break
			}
			e.got = append(e.got, m...)
		}
		echoed <- e
	}()
	rest := data
	for i := 0; len(rest) > 0 || i == 0; i++ {
		n := min(int(sizes[i%len(sizes)]), len(rest))
		if i == 1000 {
			n = len(rest) // bounds a run: the rest in one message
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	e := <-echoed
	if e.err != nil {
		t.Fatal(e.err)
	}
	got := e.got
	if err := ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-streamEnd:
		if err != io.EOF {
			t.Errorf("the stream ended with %v after the close frame, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the stream did not end after the close frame")
	}
	return got
}

// amqpFrames is a protocol header and a few AMQP frames, as a client sends
// them at the start of a connection.
func amqpFrames() []byte {
	b := []byte("AMQP\x00\x00\x09\x01")
	for i, size := range []int{12, 0, 300, 5000} {
		b = append(b, 1, 0, byte(i), byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
		for j := range size {
			b = append(b, byte(i+j))
		}
		b = append(b, 0xCE)
	}
	return b
}

func TestWSStreamSplits(t *testing.T) {
	data := amqpFrames()
	for _, tc := range []struct {
		name  string
		sizes []byte
	}{
		{"one message", nil},
		{"byte by byte", []byte{1}},
		{"header split after 3", []byte{3, 4, 255}},
		{"empty messages between", []byte{0, 5, 0, 0, 200}},
		{"frames packed", []byte{255}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sendSplit(t, data, tc.sizes); !bytes.Equal(got, data) {
				t.Errorf("read %d bytes that differ from the %d sent", len(got), len(data))
			}
		})
	}
}

// FuzzWSStream: whatever the bytes and however they are cut into
// messages, the stream reads exactly what was sent, then io.EOF.
func FuzzWSStream(f *testing.F) {
	f.Add(amqpFrames(), []byte{1})
	f.Add(amqpFrames(), []byte{7, 0, 13})
	f.Add([]byte("AMQP\x00\x00\x09\x01"), []byte{})
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		if len(data) > 1<<13 || len(sizes) > 64 {
			return
		}
		if got := sendSplit(t, data, sizes); !bytes.Equal(got, data) {
			t.Errorf("read %q, sent %q", got, data)
		}
	})
}

// A text message is refused with close code 1003.
func TestWSStreamRefusesText(t *testing.T) {
	var readErr error
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s := NewWebSocketConn(ws)
		defer s.Close()
		_, readErr = s.Read(make([]byte, 16))
		close(done)
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("AMQP")); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Errorf("after a text message: %v, want close 1003", err)
	}
	<-done
	if !errors.Is(readErr, errWSText) {
		t.Errorf("server read: %v, want errWSText", readErr)
	}
}
