package amqpserver

import (
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

// fuzzServer is one router and server shared by every fuzz input: inputs
// use channel 1 of a fresh connection each time.
var fuzzServer = sync.OnceValues(func() (*Server, error) {
	dir, err := os.MkdirTemp("", "warren-fuzz-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mapping.Open(mapping.Config{DataDir: dir, Logger: quiet, MaxMessageSize: 1 << 20})
	if err != nil {
		return nil, err
	}
	return New(Config{Logger: quiet, HandshakeTimeout: 2 * time.Second}, r), nil
})

func frame(t testing.TB, ch uint16, m wire.Method) []byte {
	b, err := wire.AppendMethodFrame(nil, ch, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handshake is what a client sends up to an open channel 1.
func handshake(t testing.TB) []byte {
	var b []byte
	b = append(b, wire.ProtocolHeader...)
	b = append(b, frame(t, 0, &wire.ConnectionStartOk{ClientProperties: mapping.Table{}, Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})...)
	b = append(b, frame(t, 0, &wire.ConnectionTuneOk{ChannelMax: 10, FrameMax: 4096, Heartbeat: 0})...)
	b = append(b, frame(t, 0, &wire.ConnectionOpen{VirtualHost: "/"})...)
	b = append(b, frame(t, 1, &wire.ChannelOpen{})...)
	return b
}

// loopbackPipe is a net.Pipe end whose addresses look like loopback, so
// that guest may log in.
type loopbackPipe struct{ net.Conn }

func (loopbackPipe) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (loopbackPipe) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5672} }

// FuzzContentAssembly feeds arbitrary frames, in small chunks, to a
// logged-in connection's channel 1: method, header and body frames in any
// order, sizes and contents. The server must never panic or hang, and must
// answer in frames.
func FuzzContentAssembly(f *testing.F) {
	pub := func(mand bool) []byte {
		return frame(f, 1, &wire.BasicPublish{RoutingKey: "q", Mandatory: mand})
	}
	hdr := func(size uint64) []byte {
		b, _ := wire.AppendHeaderFrame(nil, 1, wire.ClassBasic, size, &mapping.Properties{ContentType: "text/plain"})
		return b
	}
	body := func(s string) []byte { return wire.AppendFrame(nil, wire.FrameBody, 1, []byte(s)) }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	f.Add(cat(pub(false), hdr(5), body("hello")))
	f.Add(cat(pub(true), hdr(3), body("ab"), body("c")))
	f.Add(cat(body("before header")))
	f.Add(cat(pub(false), body("no header")))
	f.Add(cat(pub(false), hdr(1<<63), body("x")))
	f.Add(cat(pub(false), hdr(2), body("longer than declared")))
	f.Add(cat(pub(false), pub(false)))
	f.Add(cat(pub(false), hdr(0), pub(false), hdr(1), body("z")))
	f.Add(wire.AppendFrame(nil, wire.FrameHeartbeat, 5, nil))
	f.Add([]byte{1, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xCE})
	f.Add(cat(pub(false), hdr(4), []byte{3, 0, 1, 0, 0, 0, 4, 'a', 'b', 'c', 'd', 0x00}))
	f.Add(frame(f, 1, &wire.QueueDeclare{Queue: "fq"}))
	f.Add(cat(frame(f, 1, &wire.ConfirmSelect{}), pub(false), hdr(1), body("c")))
	f.Add(cat(frame(f, 1, &wire.TxSelect{}), pub(false), hdr(1), body("t"), frame(f, 1, &wire.TxCommit{})))

	srv, err := fuzzServer()
	if err != nil {
		f.Fatal(err)
	}
	hs := handshake(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		c := newConn(srv, loopbackPipe{server})
		srv.mu.Lock()
		srv.conns[c] = struct{}{}
		srv.wg.Add(1)
		srv.mu.Unlock()
		served := make(chan struct{})
		go func() { c.serve(); close(served) }()
		// Drain whatever the server writes.
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		data := append(append([]byte{}, hs...), input...)
		for len(data) > 0 {
			n := min(len(data), 7)
			if _, err := client.Write(data[:n]); err != nil {
				break // the server closed the connection: fine
			}
			data = data[n:]
		}
		client.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("connection goroutine did not end after the client went away")
		}
	})
}
