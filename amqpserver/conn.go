package amqpserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

// Connection timing.
const (
	closeOkTimeout   = 3 * time.Second  // wait for close-ok after we sent connection.close
	peerCloseTimeout = 30 * time.Second // after our close-ok, wait this long for the client to close the socket (RabbitMQ's closing timeout)
	writeTimeout     = 30 * time.Second // a peer that does not read for this long is dropped
	preTuneFrameMax  = 8192             // frame-max before connection.tune-ok
	readBufferSize   = 64 << 10
	failedLoginDelay = time.Second // slows down password guessing
)

// conn is one AMQP connection. serve runs the reader loop in the
// connection's goroutine: it is the only reader of the socket and owns the
// channel table. writeLoop runs in a second goroutine and is the only writer
// of the socket; everybody else queues frames in out.
type conn struct {
	s        *Server
	nc       net.Conn
	protocol string // the management API's label (ProtocolAMQP, ...)
	r        *wire.Reader
	out      *outbox

	frameMax    uint32
	channelMax  uint16
	heartbeat   time.Duration // reader goroutine only
	hbForWriter atomic.Int64  // the negotiated heartbeat, published to the writer

	clientProps    mapping.Table
	cancelNotify   bool
	authCloseNotes bool
	user           string
	mechanism      string // SASL mechanism of the login
	core           *mapping.Conn

	channels map[uint16]*channel // reader goroutine only

	quit         chan struct{} // closed by shutdown: stops a reader blocked by an alarm
	shutdownOnce sync.Once
	capBlocked   bool // the client announced connection.blocked
	tuned        bool // tune-ok received: protocol errors are answered from here on
	writerDone   chan struct{}
	writerQuit   chan struct{}
	quitOnce     sync.Once
	lastRead     time.Time
	forcedClose  chan string // Shutdown asks the reader to close with 320

	// Publisher confirms waiting for the writer (see confirms.go).
	confMu    sync.Mutex
	confReady []*confirms
	batching  bool // the reader is working through already-buffered frames
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{
		s:           s,
		nc:          nc,
		r:           wire.NewReader(nc, readBufferSize),
		out:         newOutbox(),
		channels:    map[uint16]*channel{},
		writerDone:  make(chan struct{}),
		writerQuit:  make(chan struct{}),
		forcedClose: make(chan string, 1),
		quit:        make(chan struct{}),
		frameMax:    preTuneFrameMax,
	}
}

func (c *conn) shutdown(reason string) {
	select {
	case c.forcedClose <- reason:
	default:
	}
	c.shutdownOnce.Do(func() { close(c.quit) })
	// Wake the reader: it checks forcedClose after any read returns.
	c.nc.SetReadDeadline(time.Now())
}

// serve runs the handshake and then the reader loop, in the connection's
// own goroutine. On return every goroutine of the connection has ended.
func (c *conn) serve() {
	defer c.s.removeConn(c)
	defer c.nc.Close()
	go c.writeLoop()
	defer func() {
		if c.core != nil {
			c.core.Close()
		}
		c.stopWriter()
	}()
	if err := c.handshake(); err != nil {
		if errors.Is(err, errClientClosed) {
			c.awaitPeerClose()
			return
		}
		// Before tune-ok the spec says to close the socket without a
		// word (RabbitMQ does), except for the login refusal that the
		// client asked to hear about (authentication_failure_close).
		var ae *amqpError
		if c.tuned || (errors.As(err, &ae) && ae.code == wire.AccessRefused) {
			c.handleFatal(err)
		} else if errors.As(err, &ae) {
			// A refused negotiation (tune-ok beyond the offer): the
			// client hears nothing, so the operator should.
			c.s.log.Info("handshake refused", "remote", c.nc.RemoteAddr(), "err", err)
		} else {
			c.s.log.Debug("handshake failed", "remote", c.nc.RemoteAddr(), "err", err)
		}
		return
	}
	c.readLoop()
}

func (c *conn) stopWriter() {
	c.quitOnce.Do(func() { close(c.writerQuit) })
	<-c.writerDone
}

// writeLoop runs in its own goroutine and is the only writer of the
// socket. It also sends heartbeats when nothing else was written.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var tick <-chan time.Time
	var ticker *time.Ticker
	setHeartbeat := func() {
		if hb := time.Duration(c.hbForWriter.Load()); ticker == nil && hb > 0 {
			ticker = time.NewTicker(hb / 2)
			tick = ticker.C
		}
	}
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	wrote := false
	for {
		select {
		case <-c.out.wake:
		case <-tick:
			if !wrote {
				// Written directly: the heartbeat itself must not count
				// as traffic that postpones the next one.
				c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
				if _, err := c.nc.Write(wire.AppendHeartbeat(nil)); err != nil {
					c.out.close()
					c.nc.Close()
					<-c.writerQuit
					return
				}
			}
			wrote = false
			continue
		case <-c.writerQuit:
			// Flush what is left (a close or close-ok), then stop.
			if b := c.out.take(); len(b) > 0 {
				c.nc.SetWriteDeadline(time.Now().Add(time.Second))
				c.nc.Write(b)
			}
			c.out.close()
			return
		}
		setHeartbeat()
		c.flushConfirms()
		b := c.out.take()
		if len(b) == 0 {
			c.out.drained(b)
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.nc.Write(b); err != nil {
			c.out.close()
			c.nc.Close()
			<-c.writerQuit
			return
		}
		wrote = true
		for _, ch := range c.out.drained(b) {
			ch.core.Resume()
		}
	}
}

// send queues one method frame on a channel.
func (c *conn) send(ch uint16, m wire.Method) {
	if err := c.out.write(func(b []byte) ([]byte, error) { return wire.AppendMethodFrame(b, ch, m) }); err != nil {
		c.s.log.Error("cannot encode method", "method", m.Name(), "err", err)
	}
}

// handleFatal reports a connection-level failure: a protocol exception is
// sent as connection.close, anything else just ends the connection.
func (c *conn) handleFatal(err error) {
	var ae *amqpError
	if !errors.As(err, &ae) {
		if code, ok := wire.ReplyCodeFor(err); ok {
			ae = &amqpError{code: code, text: wireErrorText(err)}
		}
	}
	if ae == nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.s.log.Debug("connection ended", "remote", c.nc.RemoteAddr(), "err", err)
		}
		return
	}
	c.s.log.Info("closing connection", "remote", c.nc.RemoteAddr(), "user", c.user, "reason", ae.replyText())
	c.closeWith(ae)
}

// closeWith sends connection.close and waits a little for close-ok.
func (c *conn) closeWith(ae *amqpError) {
	c.send(0, &wire.ConnectionClose{ReplyCode: ae.code, ReplyText: ae.replyText(), FailingClassID: ae.classID, FailingMethodID: ae.methodID})
	deadline := time.Now().Add(closeOkTimeout)
	c.nc.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		f, err := c.r.ReadFrame()
		if err != nil {
			return
		}
		if f.Type == wire.FrameMethod && f.Channel == 0 {
			m, err := wire.ReadMethod(f.Payload)
			if err != nil {
				return
			}
			switch m.(type) {
			case *wire.ConnectionCloseOk:
				return
			case *wire.ConnectionClose:
				c.send(0, &wire.ConnectionCloseOk{})
				return
			}
		}
	}
}

func (c *conn) handshake() error {
	c.nc.SetDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout))
	if err := c.r.ReadProtocolHeader(); err != nil {
		if errors.Is(err, wire.ErrProtocolHeader) {
			c.nc.Write(wire.ProtocolHeader)
			return io.EOF
		}
		return err
	}
	c.r.SetMaxFrameSize(preTuneFrameMax)
	c.send(0, &wire.ConnectionStart{
		VersionMajor: 0, VersionMinor: 9,
		ServerProperties: c.s.serverProperties(),
		Mechanisms:       c.mechanisms(),
		Locales:          "en_US",
	})
	m, err := c.expect(&wire.ConnectionStartOk{})
	if err != nil {
		return err
	}
	so := m.(*wire.ConnectionStartOk)
	c.clientProps = so.ClientProperties
	if caps, ok := so.ClientProperties["capabilities"].(mapping.Table); ok {
		c.cancelNotify, _ = caps["consumer_cancel_notify"].(bool)
		c.authCloseNotes, _ = caps["authentication_failure_close"].(bool)
		c.capBlocked, _ = caps["connection.blocked"].(bool)
	}
	user, err := c.login(so)
	if err != nil {
		var ae *amqpError
		if errors.As(err, &ae) {
			return err
		}
		c.s.log.Warn("login refused", "user", user, "mechanism", so.Mechanism, "remote", c.nc.RemoteAddr(), "reason", err)
		// Slow down password guessing; the handshake deadline still holds.
		time.Sleep(failedLoginDelay)
		if !c.authCloseNotes {
			return io.EOF
		}
		return newError(wire.AccessRefused, so, "Login was refused using authentication mechanism %s. For details see the broker logfile.", so.Mechanism)
	}
	c.user = user

	c.send(0, &wire.ConnectionTune{ChannelMax: c.s.cfg.ChannelMax, FrameMax: c.s.cfg.FrameMax, Heartbeat: uint16(max(c.s.cfg.Heartbeat, 0) / time.Second)})
	m, err = c.expect(&wire.ConnectionTuneOk{})
	if err != nil {
		return err
	}
	to := m.(*wire.ConnectionTuneOk)
	// tune-ok may only lower what tune offered: 0 ("no limit") or more
	// than the offer is refused, as RabbitMQ refuses it. Before
	// connection.open-ok that is a silent close (see serve).
	if to.ChannelMax == 0 || to.ChannelMax > c.s.cfg.ChannelMax {
		return newError(wire.NotAllowed, to, "negotiated channel_max = %d is higher than the maximum allowed value (%d)", to.ChannelMax, c.s.cfg.ChannelMax)
	}
	c.channelMax = to.ChannelMax
	if to.FrameMax == 0 || to.FrameMax > c.s.cfg.FrameMax {
		return newError(wire.NotAllowed, to, "negotiated frame_max = %d is higher than the maximum allowed value (%d)", to.FrameMax, c.s.cfg.FrameMax)
	}
	if to.FrameMax < wire.FrameMinSize {
		return newError(wire.NotAllowed, to, "negotiated frame_max = %d is lower than the minimum allowed value (%d)", to.FrameMax, wire.FrameMinSize)
	}
	c.frameMax = to.FrameMax
	c.tuned = true
	c.heartbeat = time.Duration(to.Heartbeat) * time.Second
	c.hbForWriter.Store(int64(c.heartbeat))
	c.r.SetMaxFrameSize(c.frameMax)

	m, err = c.expect(&wire.ConnectionOpen{})
	if err != nil {
		return err
	}
	op := m.(*wire.ConnectionOpen)
	c.core, err = c.s.router.Connect(user, op.VirtualHost, mapping.ConnInfo{
		Name:             c.nc.RemoteAddr().String() + " -> " + c.nc.LocalAddr().String(),
		Protocol:         c.protocol,
		Peer:             c.nc.RemoteAddr().String(),
		Local:            c.nc.LocalAddr().String(),
		ClientProperties: c.clientProps,
		TLS:              c.tlsState(),
		AuthMechanism:    c.mechanism,
		Close:            c.shutdown,
	})
	if err != nil {
		return fromCore(err, op)
	}
	c.send(0, &wire.ConnectionOpenOk{})
	c.nc.SetDeadline(time.Time{})
	c.out.signal() // the writer starts heartbeats now that the interval is known
	return nil
}

// expect reads the next frame during the handshake, which must be the
// given method on channel 0.
func (c *conn) expect(want wire.Method) (wire.Method, error) {
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			return nil, err
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod || f.Channel != 0 {
			return nil, newError(wire.CommandInvalid, want, "expected '%s' on channel 0, got a frame of type %d on channel %d", want.Name(), f.Type, f.Channel)
		}
		m, err := wire.ReadMethod(f.Payload)
		if err != nil {
			return nil, err
		}
		if _, ok := m.(*wire.ConnectionClose); ok {
			c.send(0, &wire.ConnectionCloseOk{})
			return nil, errClientClosed
		}
		if m.ClassID() != want.ClassID() || m.MethodID() != want.MethodID() {
			return nil, newError(wire.CommandInvalid, m, "expected '%s', got '%s'", want.Name(), m.Name())
		}
		return m, nil
	}
}

func parseCredentials(mechanism, response string) (string, string, error) {
	switch mechanism {
	case "PLAIN":
		parts := strings.Split(response, "\x00")
		if len(parts) != 3 {
			return "", "", fmt.Errorf("malformed PLAIN response")
		}
		return parts[1], parts[2], nil
	case "AMQPLAIN":
		b := make([]byte, 4, 4+len(response))
		b[0], b[1], b[2], b[3] = byte(len(response)>>24), byte(len(response)>>16), byte(len(response)>>8), byte(len(response))
		t, _, err := mapping.ReadTable(append(b, response...))
		if err != nil {
			return "", "", fmt.Errorf("malformed AMQPLAIN response: %v", err)
		}
		u, _ := t["LOGIN"].(string)
		p, _ := t["PASSWORD"].(string)
		return u, p, nil
	}
	return "", "", fmt.Errorf("unsupported authentication mechanism '%s'", mechanism)
}

func (s *Server) serverProperties() mapping.Table {
	return mapping.Table{
		"product":      s.cfg.Product,
		"version":      s.cfg.Version,
		"platform":     "Go",
		"copyright":    "Warren authors",
		"information":  "Warren: AMQP 0-9-1, REST and WebSocket on NATS JetStream",
		"cluster_name": "warren",
		"capabilities": mapping.Table{
			"publisher_confirms":           true,
			"exchange_exchange_bindings":   true,
			"basic.nack":                   true,
			"consumer_cancel_notify":       true,
			"connection.blocked":           true,
			"consumer_priorities":          false,
			"authentication_failure_close": true,
			"per_consumer_qos":             true,
			"direct_reply_to":              true,
		},
	}
}

// readLoop reads frames until the connection ends. Runs in serve's
// goroutine.
func (c *conn) readLoop() {
	for {
		c.out.waitForSpace(c.endBatch)
		if c.heartbeat > 0 {
			now := time.Now()
			if now.Sub(c.lastRead) > c.heartbeat/4 {
				c.nc.SetReadDeadline(now.Add(2 * c.heartbeat))
				c.lastRead = now
				// shutdown closes quit, then sets a past deadline to wake
				// this read: a client that never stops sending must not
				// have that deadline pushed back here.
				select {
				case <-c.quit:
					c.nc.SetReadDeadline(now)
				default:
				}
			}
		}
		if !c.r.FrameBuffered() {
			c.endBatch() // the read may wait for the client: send what it waits for
		}
		f, err := c.r.ReadFrame()
		if c.r.FrameBuffered() {
			c.beginBatch()
		}
		if err != nil {
			select {
			case reason := <-c.forcedClose:
				c.closeWith(&amqpError{code: wire.ConnectionForced, text: fmt.Sprintf("broker forced connection closure with reason '%s'", reason)})
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.s.log.Info("missed heartbeats from client, timeout", "remote", c.nc.RemoteAddr(), "heartbeat", c.heartbeat)
				return
			}
			c.handleFatal(err)
			return
		}
		if err := c.handleFrame(f); err != nil {
			if errors.Is(err, errClientClosed) {
				c.awaitPeerClose()
				return
			}
			if errors.Is(err, errConnClosed) {
				return
			}
			c.handleFatal(err)
			return
		}
	}
}

var (
	errConnClosed   = errors.New("connection closed")
	errClientClosed = errors.New("connection closed by client") // we answered its connection.close
)

// awaitPeerClose runs after close-ok went into the outbox for a
// client-initiated connection.close. As RabbitMQ does, the server leaves
// closing the socket to the client, which thus always reads close-ok
// before the end of the stream (amqp091-go reports an "EOF" error instead
// of a clean close when the socket ends first). Whatever the client still
// sends is discarded; the wait ends at its EOF, after peerCloseTimeout,
// or when Shutdown wakes the reader.
func (c *conn) awaitPeerClose() {
	c.stopWriter() // flushes close-ok; nothing, not even a heartbeat, may follow it
	c.nc.SetReadDeadline(time.Now().Add(peerCloseTimeout))
	select {
	case <-c.quit: // Shutdown's wake-up deadline may just have been overwritten
		return
	default:
	}
	c.r.Skip()
}

// waitIfBlocked holds a publishing connection while a resource alarm is
// active, as RabbitMQ does: the reader stops, so the client feels TCP
// back-pressure; consumers on other connections keep draining. Clients
// that asked for it are told with connection.blocked / unblocked.
func (c *conn) waitIfBlocked() {
	blocked, reason := c.s.router.Blocked()
	if !blocked {
		return
	}
	c.endBatch()
	if c.capBlocked {
		c.send(0, &wire.ConnectionBlocked{Reason: reason})
	}
	c.s.log.Info("publisher blocked by resource alarm", "remote", c.nc.RemoteAddr(), "reason", reason)
	if c.s.router.WaitUnblocked(c.quit) && c.capBlocked {
		c.send(0, &wire.ConnectionUnblocked{})
	}
	// Reading resumes: the heartbeat deadline starts again.
	c.lastRead = time.Time{}
}

func (c *conn) handleFrame(f wire.Frame) error {
	if f.Type == wire.FrameHeartbeat {
		if f.Channel != 0 {
			return newError(wire.UnexpectedFrame, nil, "heartbeat frame on channel %d", f.Channel)
		}
		return nil
	}
	if f.Channel == 0 {
		if f.Type != wire.FrameMethod {
			return newError(wire.UnexpectedFrame, nil, "content frame of type %d on channel 0", f.Type)
		}
		m, err := wire.ReadMethod(f.Payload)
		if err != nil {
			return err
		}
		return c.handleConnMethod(m)
	}
	ch := c.channels[f.Channel]
	if ch == nil {
		if f.Type != wire.FrameMethod {
			return newError(wire.ChannelError, nil, "frame of type %d on channel %d, which is not open", f.Type, f.Channel)
		}
		m, err := wire.ReadMethod(f.Payload)
		if err != nil {
			return err
		}
		if _, ok := m.(*wire.ChannelOpen); !ok {
			return newError(wire.ChannelError, m, "expected 'channel.open' on channel %d, got '%s'", f.Channel, m.Name())
		}
		// channel_max bounds how many channels are open, as in RabbitMQ,
		// not the channel number.
		if c.channelMax > 0 && len(c.channels) >= int(c.channelMax) {
			return newError(wire.NotAllowed, m, "number of channels opened (%d) has reached the negotiated channel_max (%d)", len(c.channels), c.channelMax)
		}
		c.openChannel(f.Channel)
		return nil
	}
	return ch.handleFrame(f)
}

func (c *conn) handleConnMethod(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ConnectionClose:
		for _, ch := range c.channels {
			ch.close()
		}
		c.core.Close()
		c.send(0, &wire.ConnectionCloseOk{})
		return errClientClosed
	case *wire.ConnectionCloseOk:
		return errConnClosed
	case *wire.ConnectionBlocked, *wire.ConnectionUnblocked:
		return nil
	case *wire.ConnectionUpdateSecret:
		return newError(wire.NotImplemented, m, "connection.update-secret is not supported")
	default:
		return newError(wire.CommandInvalid, m, "method '%s' is not allowed on channel 0", m.Name())
	}
}

// wireErrorText drops the codec's class prefix ("frame error: ") that the
// reply code's name already says.
func wireErrorText(err error) string {
	t := err.Error()
	for _, class := range []error{wire.ErrFrame, wire.ErrSyntax, wire.ErrNotImplemented} {
		t = strings.TrimPrefix(t, class.Error()+": ")
	}
	return t
}
