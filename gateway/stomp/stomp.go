package stomp

// STOMP 1.0-1.2 over WebSocket at /ws, with RabbitMQ Web-STOMP's
// destinations, so that @stomp/stompjs and other STOMP clients work
// unchanged:
//
//	/queue/Q          SEND: default exchange, key Q (Q declared durable if missing)
//	                  SUBSCRIBE: consume Q (declared if missing)
//	/amq/queue/Q      like /queue/Q, but Q must exist
//	/exchange/X/K     SEND: exchange X, key K
//	                  SUBSCRIBE: exclusive server-named queue bound to X with K
//	                  (x-queue-name names it), or with durable:true a durable
//	                  shared queue that outlives the session (see subQueue)
//	/topic/K          /exchange/amq.topic/K
//	/temp-queue/T     in a SEND's reply-to: an exclusive reply queue for the
//	                  session, subscribed as subscription "/temp-queue/T"
//	/reply-queue/Q    SEND: default exchange, key Q (answers to a reply-to)
//
// Every subscription has its own core channel, so its prefetch
// (prefetch-count header) and ack mode are its own. SUBSCRIBE may carry
// RabbitMQ's queue-argument headers (x-message-ttl, x-max-length, ...),
// which apply to the queue it declares.

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// STOMP heart-beats this server offers and asks for (ms).
const (
	stompServerBeat = 10 * time.Second
	stompClientBeat = 10 * time.Second
	stompServerName = "Warren/0.1"
	stompMaxTx      = 1024 // frames buffered in one transaction
)

// wsSTOMP serves GET /ws.
func (s *Server) wsSTOMP(c echo.Context) error {
	a, authed, err := s.ws().UpgradeAuth(c)
	if err != nil {
		return err
	}
	st := s.ws()
	ws, err := st.Upgrader(stompSubprotocols).Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil
	}
	wc := wsconn.New(ws, websocket.TextMessage)
	wc.Heartbeat = []byte{'\n'}
	sess := &stompSession{s: s, peer: wsconn.NewPeer(c), wc: wc, version: "1.2", subs: map[string]*stompSub{}, temps: map[string]*stompSub{}, tx: map[string][]*stompFrame{}}
	wc.Farewell = sess.farewell
	s.ws().Start(wc, func() { sess.run(a, authed) })
	return nil
}

type stompSession struct {
	s       *Server
	peer    *wsconn.Peer
	wc      *wsconn.Conn
	version string
	auth    wsconn.Auth
	conn    *mapping.Conn
	ctl     *mapping.Channel

	mu       sync.Mutex
	subs     map[string]*stompSub
	temps    map[string]*stompSub // /temp-queue/T -> its subscription
	tx       map[string][]*stompFrame
	nextChan int
	errText  string // body of the ERROR frame sent when the session ends
	errRcpt  string
	expiry   *time.Timer // ends the session when its token expires
}

type stompSub struct {
	sess    *stompSession
	id      string
	dest    string
	ch      *mapping.Channel
	tag     string
	queue   string
	temp    bool   // the gateway's own queue: deleted on UNSUBSCRIBE
	durable bool   // a durable subscription's queue: deleted by UNSUBSCRIBE with durable:true
	ackMode string // auto, client, client-individual
}

func (sub *stompSub) Deliver(d mapping.Delivery) bool {
	return sub.sess.wc.Deliver(sub.ch, sub, d)
}

func (sub *stompSub) Cancelled(_ string, reason error) {
	// RabbitMQ sends an ERROR when a subscribed queue is deleted.
	sub.sess.fatal("Subscription cancelled", "subscription '"+sub.id+"' to queue '"+sub.queue+"' was cancelled: "+reason.Error(), "")
}

// ackID is the ack header of a delivery: subscription and delivery tag.
func (sub *stompSub) ackID(tag uint64) string {
	return "T_" + sub.id + "@@" + strconv.FormatUint(tag, 10)
}

func (sub *stompSub) EncodeDelivery(b []byte, d mapping.Delivery) []byte {
	m := d.Message
	f := stompFrame{command: "MESSAGE", body: m.Body}
	f.headers = make([][2]string, 0, 12)
	f.set("subscription", sub.id)
	f.set("destination", sub.sess.destinationOf(sub, m))
	id := sub.ackID(d.Tag)
	f.set("message-id", id)
	if sub.ackMode != "auto" {
		f.set("ack", id)
	}
	f.set("redelivered", strconv.FormatBool(d.Redelivered))
	stompPropsOut(&f, &m.Properties)
	return appendStompFrame(b, &f, sub.sess.version != "1.0")
}

// destinationOf is the destination header of a delivered message.
func (sess *stompSession) destinationOf(sub *stompSub, m *mapping.Message) string {
	switch {
	case strings.HasPrefix(sub.dest, "/temp-queue/"), strings.HasPrefix(sub.dest, "/queue/"), strings.HasPrefix(sub.dest, "/amq/queue/"):
		if m.Exchange == "" {
			return sub.dest
		}
	case strings.HasPrefix(sub.dest, "/topic/") && m.Exchange == "amq.topic":
		return "/topic/" + m.RoutingKey
	}
	if m.Exchange == "" {
		return "/queue/" + m.RoutingKey
	}
	return "/exchange/" + m.Exchange + "/" + m.RoutingKey
}

// send queues a server frame.
func (sess *stompSession) send(f *stompFrame) {
	sess.wc.Send(appendStompFrame(nil, f, sess.version != "1.0"))
}

// fatal ends the session with an ERROR frame (the STOMP way: the server
// closes the connection after ERROR). Safe from core callbacks.
func (sess *stompSession) fatal(message, detail, receipt string) {
	sess.mu.Lock()
	if sess.errText == "" {
		sess.errText, sess.errRcpt = detail, receipt
	}
	sess.mu.Unlock()
	sess.wc.Kill(wsconn.CloseProtocol, message)
}

// farewell is the ERROR frame written before the close frame.
func (sess *stompSession) farewell(code int, text string) []byte {
	sess.mu.Lock()
	detail, rcpt := sess.errText, sess.errRcpt
	sess.mu.Unlock()
	if detail == "" && code == websocket.CloseNormalClosure {
		return nil // DISCONNECT or the client went away
	}
	if detail == "" {
		detail = text
	}
	f := &stompFrame{command: "ERROR", body: []byte(detail)}
	f.set("message", text)
	f.set("content-type", "text/plain")
	if rcpt != "" {
		f.set("receipt-id", rcpt)
	}
	if code != websocket.CloseNormalClosure {
		f.set("code", strconv.Itoa(code))
	}
	return appendStompFrame(nil, f, sess.version != "1.0")
}

// fail reports an error from handling frame f and ends the session.
func (sess *stompSession) fail(f *stompFrame, err error) {
	code, name, msg := wsconn.ErrorCode(err)
	sess.fatal(name, msg+" (code "+strconv.Itoa(code)+", in "+f.command+")", f.get("receipt"))
}

func (sess *stompSession) run(a wsconn.Auth, authed bool) {
	wc := sess.wc
	ws := wc.WS
	maxBody := int64(16 << 20)
	if sess.s.router != nil {
		maxBody = sess.s.router.MaxMessageSize()
	}
	ws.SetReadLimit(maxBody + 64<<10)
	readWait := wsconn.PongWait
	ws.SetPongHandler(func(string) error { wc.Alive(readWait); return nil })
	wc.Alive(wsconn.AuthWait)
	var buf []byte
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				sess.fatal("frame too large", "a frame was larger than the limit of "+strconv.FormatInt(maxBody, 10)+" bytes", "")
			}
			break
		}
		if len(buf) == 0 {
			buf = data
		} else {
			buf = append(buf, data...)
		}
		if int64(len(buf)) > maxBody+64<<10 {
			sess.fatal("frame too large", "a frame was larger than the limit", "")
			break
		}
		if sess.conn != nil {
			wc.Alive(readWait)
		}
		for {
			f, n, err := parseStompFrame(buf, sess.version != "1.0", int(maxBody))
			if errors.Is(err, errStompIncomplete) {
				buf = buf[n:]
				break
			}
			if err != nil {
				sess.fatal("malformed frame", err.Error(), "")
				break
			}
			buf = buf[n:]
			if sess.conn == nil {
				w, ok := sess.connect(f, a, authed)
				if !ok {
					break
				}
				readWait = w
				wc.Alive(readWait)
				continue
			}
			if !sess.handle(f) {
				break
			}
		}
		if len(buf) == 0 {
			buf = nil
		} else {
			buf = append([]byte(nil), buf...)
		}
		if wc.IsDead() {
			break
		}
	}
	if sess.expiry != nil {
		sess.expiry.Stop()
	}
	if sess.conn != nil {
		sess.conn.Close()
	}
}

// connect handles CONNECT/STOMP and returns the read deadline to use.
func (sess *stompSession) connect(f *stompFrame, a wsconn.Auth, authed bool) (time.Duration, bool) {
	if f.command != "CONNECT" && f.command != "STOMP" {
		sess.fatal("not connected", "the first frame must be CONNECT, got "+f.command, "")
		return 0, false
	}
	version := ""
	accept := f.get("accept-version")
	if accept == "" {
		accept = "1.0"
	}
	for _, v := range []string{"1.2", "1.1", "1.0"} {
		if strings.Contains(","+strings.ReplaceAll(accept, " ", "")+",", ","+v+",") {
			version = v
			break
		}
	}
	if version == "" {
		sess.version = "1.2"
		sess.fatal("Supported protocol versions are 1.0,1.1,1.2", "this server speaks STOMP 1.0, 1.1 and 1.2; the client offered "+accept, "")
		return 0, false
	}
	sess.version = version
	vhost := sess.vhostOf(f.get("host"))
	if authed {
		if vhost != "" {
			a.VHost = vhost
		}
	} else {
		var err error
		a, err = sess.s.ws().LoginPassword(sess.peer, f.get("login"), f.get("passcode"), "", vhost)
		if err != nil {
			sess.fatal("Access refused", "login refused: "+err.Error(), f.get("receipt"))
			return 0, false
		}
	}
	if a.VHost == "" {
		a.VHost = "/"
	}
	conn, err := sess.s.ws().ConnectCore(sess.peer, a, "STOMP "+version, sess.wc)
	if err != nil {
		sess.fatal("Virtual host access refused", err.Error(), f.get("receipt"))
		return 0, false
	}
	sess.auth, sess.conn = a, conn
	sess.nextChan = 1
	sess.ctl = conn.OpenChannel(1, stompNullSink{})
	if !a.Expires.IsZero() {
		sess.expiry = time.AfterFunc(time.Until(a.Expires), func() {
			sess.fatal("token expired", "the token of this session expired; reconnect with a new one from POST /v1/tokens", "")
		})
	}
	// Heart-beats: cx,cy from the client; we can send every
	// stompServerBeat and want one every stompClientBeat.
	var cx, cy int
	if hb := f.get("heart-beat"); hb != "" && version != "1.0" {
		x, y, _ := strings.Cut(hb, ",")
		cx, _ = strconv.Atoi(strings.TrimSpace(x))
		cy, _ = strconv.Atoi(strings.TrimSpace(y))
	}
	out := &stompFrame{command: "CONNECTED"}
	out.set("version", version)
	sx, sy := 0, 0
	if version != "1.0" {
		sx, sy = int(stompServerBeat/time.Millisecond), int(stompClientBeat/time.Millisecond)
		out.set("heart-beat", strconv.Itoa(sx)+","+strconv.Itoa(sy))
	}
	out.set("server", stompServerName)
	out.set("session", conn.VHost().Name()+"/"+strconv.FormatUint(sess.s.ws().Seq.Load(), 10))
	out.set("user-name", a.User)
	sess.send(out)
	if cy > 0 && sx > 0 {
		sess.wc.SetBeat(time.Duration(max(sx, cy)) * time.Millisecond)
	}
	readWait := wsconn.PongWait
	if cx > 0 && sy > 0 {
		readWait = max(readWait, 3*time.Duration(max(cx, sy))*time.Millisecond)
	}
	return readWait, true
}

// vhostOf reads the host header as RabbitMQ does (the vhost), but a
// host name that is not a vhost (clients often send the server's host
// name) means the default vhost.
func (sess *stompSession) vhostOf(host string) string {
	if host == "" || sess.s.router == nil {
		return ""
	}
	if _, err := sess.s.router.VHost(host); err == nil {
		return host
	}
	return ""
}

type stompNullSink struct{}

func (stompNullSink) Deliver(mapping.Delivery) bool { return true }
func (stompNullSink) Cancelled(string, error)       {}

// handle runs one frame; false ends the session.
func (sess *stompSession) handle(f *stompFrame) bool {
	if txn := f.get("transaction"); txn != "" && (f.command == "SEND" || f.command == "ACK" || f.command == "NACK") {
		sess.mu.Lock()
		frames, ok := sess.tx[txn]
		if ok && len(frames) < stompMaxTx {
			sess.tx[txn] = append(frames, f)
		}
		sess.mu.Unlock()
		if !ok {
			sess.fail(f, wsconn.Errorf(http.StatusBadRequest, "no transaction '%s' (BEGIN it first)", txn))
			return false
		}
		if len(frames) >= stompMaxTx {
			sess.fail(f, wsconn.Errorf(http.StatusBadRequest, "transaction '%s' has more than %d frames", txn, stompMaxTx))
			return false
		}
		sess.receipt(f)
		return true
	}
	var err error
	switch f.command {
	case "SEND":
		err = sess.sendFrame(f, true)
		if err == nil {
			return true // the receipt follows the store confirm
		}
	case "SUBSCRIBE":
		err = sess.subscribe(f)
	case "UNSUBSCRIBE":
		err = sess.unsubscribe(f)
	case "ACK", "NACK":
		err = sess.ack(f)
	case "BEGIN", "COMMIT", "ABORT":
		err = sess.transaction(f)
	case "DISCONNECT":
		sess.receipt(f)
		sess.wc.Kill(websocket.CloseNormalClosure, "")
		return false
	case "CONNECT", "STOMP":
		err = wsconn.Errorf(http.StatusBadRequest, "already connected")
	default:
		err = wsconn.Errorf(http.StatusBadRequest, "unknown command '%s'", f.command)
	}
	if err != nil {
		sess.fail(f, err)
		return false
	}
	sess.receipt(f)
	return true
}

func (sess *stompSession) receipt(f *stompFrame) {
	if r := f.get("receipt"); r != "" {
		out := &stompFrame{command: "RECEIPT"}
		out.set("receipt-id", r)
		sess.send(out)
	}
}

// stompDest is a parsed destination.
type stompDest struct {
	kind string // queue, amqqueue, exchange, topic, temp, reply
	name string // queue or exchange name, temp-queue name
	key  string // routing or binding key
}

func parseDest(d string) (stompDest, error) {
	bad := func() (stompDest, error) {
		return stompDest{}, wsconn.Errorf(http.StatusBadRequest, "unknown destination '%s': use /queue/Q, /amq/queue/Q, /exchange/X/KEY, /topic/KEY, /temp-queue/T or /reply-queue/Q", d)
	}
	switch {
	case strings.HasPrefix(d, "/queue/") && len(d) > len("/queue/"):
		return stompDest{kind: "queue", name: d[len("/queue/"):]}, nil
	case strings.HasPrefix(d, "/amq/queue/") && len(d) > len("/amq/queue/"):
		return stompDest{kind: "amqqueue", name: d[len("/amq/queue/"):]}, nil
	case strings.HasPrefix(d, "/exchange/"):
		x, k, _ := strings.Cut(d[len("/exchange/"):], "/")
		if x == "" {
			return bad()
		}
		return stompDest{kind: "exchange", name: x, key: k}, nil
	case strings.HasPrefix(d, "/topic/") && len(d) > len("/topic/"):
		return stompDest{kind: "topic", name: "amq.topic", key: d[len("/topic/"):]}, nil
	case strings.HasPrefix(d, "/temp-queue/") && len(d) > len("/temp-queue/"):
		return stompDest{kind: "temp", name: d[len("/temp-queue/"):]}, nil
	case strings.HasPrefix(d, "/reply-queue/") && len(d) > len("/reply-queue/"):
		return stompDest{kind: "reply", name: d[len("/reply-queue/"):]}, nil
	}
	return bad()
}

// ensureQueue declares a /queue/ destination's queue unless it exists
// (RabbitMQ declares them durable). With queue arguments it declares it
// as RabbitMQ does, so that an existing queue with other arguments is
// refused (406) rather than silently used.
func (sess *stompSession) ensureQueue(ch *mapping.Channel, name string, args mapping.Table) error {
	if args == nil {
		if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: name}, true); err == nil {
			return nil
		}
	}
	_, err := ch.DeclareQueue(mapping.QueueSpec{Name: name, Durable: true, Args: args}, false)
	return err
}

// sendFrame publishes a SEND; with receipt, the RECEIPT follows the
// store's confirmation.
func (sess *stompSession) sendFrame(f *stompFrame, withReceipt bool) error {
	dest := f.get("destination")
	if dest == "" {
		return wsconn.Errorf(http.StatusBadRequest, "SEND needs a destination header")
	}
	d, err := parseDest(dest)
	if err != nil {
		return err
	}
	m := &mapping.Message{Body: f.body}
	switch d.kind {
	case "queue":
		// As on RabbitMQ, a SEND's queue-argument headers apply to the
		// queue it declares (they also stay in the message, like any
		// other header).
		args, err := stompQueueArgs(f)
		if err != nil {
			return err
		}
		if err := sess.ensureQueue(sess.ctl, d.name, args); err != nil {
			return err
		}
		m.RoutingKey = d.name
	case "amqqueue", "reply":
		m.RoutingKey = d.name
	case "exchange", "topic":
		m.Exchange, m.RoutingKey = d.name, d.key
	case "temp":
		return wsconn.Errorf(http.StatusBadRequest, "cannot SEND to '%s': a /temp-queue/ is only used as a reply-to", dest)
	}
	props, err := stompPropsIn(f)
	if err != nil {
		return err
	}
	if rt := props.ReplyTo; strings.HasPrefix(rt, "/temp-queue/") {
		q, err := sess.tempQueue(rt)
		if err != nil {
			return err
		}
		props.ReplyTo = q
	} else if strings.HasPrefix(rt, "/reply-queue/") {
		props.ReplyTo = rt[len("/reply-queue/"):]
	}
	m.Properties = props
	// A refusal after routing (full queue, store failure) ends the
	// session with an ERROR naming it, receipt or not: STOMP has no
	// negative receipt, and a client must not assume the message was
	// published.
	r := f.get("receipt")
	if !withReceipt {
		r = ""
	}
	out := sess.ctl.Publish(m, func(o mapping.Outcome) {
		if err := o.Err(); err != nil {
			sess.fail(f, err)
			return
		}
		if r != "" {
			rf := &stompFrame{command: "RECEIPT"}
			rf.set("receipt-id", r)
			sess.send(rf)
		}
	})
	if err := out.Err(); err != nil {
		return err
	}
	sess.ctl.WaitFlow(sess.wc.Dying)
	return nil
}

// tempQueue returns the queue behind a /temp-queue/ reply-to, creating
// it (exclusive, server-named) and its subscription on first use.
func (sess *stompSession) tempQueue(dest string) (string, error) {
	sess.mu.Lock()
	sub := sess.temps[dest]
	sess.mu.Unlock()
	if sub != nil {
		return sub.queue, nil
	}
	sess.nextChan++
	sub = &stompSub{sess: sess, id: dest, dest: dest, ackMode: "auto", temp: true}
	sub.ch = sess.conn.OpenChannel(sess.nextChan, sub)
	qi, err := sub.ch.DeclareQueue(mapping.QueueSpec{Exclusive: true, AutoDelete: true}, false)
	if err != nil {
		sub.ch.Close()
		return "", err
	}
	sub.queue = qi.Name
	if err := sub.ch.Consume(qi.Name, "stomp-"+dest, true, false, nil, func(tag string) { sub.tag = tag }); err != nil {
		sub.ch.Close()
		return "", err
	}
	sess.mu.Lock()
	sess.temps[dest] = sub
	sess.subs[dest] = sub
	sess.mu.Unlock()
	return qi.Name, nil
}

func (sess *stompSession) subscribe(f *stompFrame) error {
	dest := f.get("destination")
	if dest == "" {
		return wsconn.Errorf(http.StatusBadRequest, "SUBSCRIBE needs a destination header")
	}
	id := f.get("id")
	if id == "" {
		if sess.version == "1.2" {
			return wsconn.Errorf(http.StatusBadRequest, "SUBSCRIBE needs an id header in STOMP 1.2")
		}
		id = dest
	}
	mode := f.get("ack")
	switch mode {
	case "":
		mode = "auto"
	case "auto", "client", "client-individual":
	default:
		return wsconn.Errorf(http.StatusBadRequest, "unknown ack mode '%s': use auto, client or client-individual", mode)
	}
	prefetch := 0
	if p := f.get("prefetch-count"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return wsconn.Errorf(http.StatusBadRequest, "prefetch-count must be 0 to 65535, got '%s'", p)
		}
		prefetch = n
	}
	// exclusive:true asks for an exclusive consumer, as on RabbitMQ: a
	// second consumer of the queue is refused while it lasts.
	exclusive, err := stompBool(f, "exclusive", false)
	if err != nil {
		return err
	}
	d, err := parseDest(dest)
	if err != nil {
		return err
	}
	args, err := stompQueueArgs(f)
	if err != nil {
		return err
	}
	var spec mapping.QueueSpec
	if d.kind == "exchange" || d.kind == "topic" {
		if spec, err = subQueue(f, dest, args); err != nil {
			return err
		}
	}
	sess.mu.Lock()
	_, dup := sess.subs[id]
	n := len(sess.subs)
	sess.mu.Unlock()
	if dup {
		return wsconn.Errorf(http.StatusBadRequest, "duplicated subscription identifier '%s'", id)
	}
	if n >= wsconn.MaxSubscriptions {
		return wsconn.Errorf(http.StatusTooManyRequests, "a session may have at most %d subscriptions", wsconn.MaxSubscriptions)
	}
	sess.nextChan++
	sub := &stompSub{sess: sess, id: id, dest: dest, ackMode: mode}
	sub.ch = sess.conn.OpenChannel(sess.nextChan, sub)
	created := false // a queue this SUBSCRIBE declared, to drop if it fails
	fail := func(err error) error {
		if created {
			sub.ch.DeleteQueue(sub.queue, false, false)
		}
		sub.ch.Close()
		return err
	}
	switch d.kind {
	case "queue":
		if err := sess.ensureQueue(sub.ch, d.name, args); err != nil {
			return fail(err)
		}
		sub.queue = d.name
	case "amqqueue", "reply":
		sub.queue = d.name
	case "exchange", "topic":
		existed := false
		if spec.Name != "" {
			_, err := sub.ch.DeclareQueue(mapping.QueueSpec{Name: spec.Name}, true)
			existed = err == nil
		}
		qi, err := sub.ch.DeclareQueue(spec, false)
		if err != nil {
			return fail(err)
		}
		sub.queue, created = qi.Name, !existed
		sub.durable = spec.Durable
		sub.temp = !spec.Durable && !existed
		if err := sub.ch.BindQueue(qi.Name, d.name, d.key, nil); err != nil {
			return fail(err)
		}
	case "temp":
		return fail(wsconn.Errorf(http.StatusBadRequest, "cannot SUBSCRIBE to '%s': reply queues are subscribed when a SEND names them in reply-to", dest))
	}
	sub.ch.SetPrefetch(prefetch, false)
	sess.mu.Lock()
	sess.subs[id] = sub
	sess.mu.Unlock()
	err = sub.ch.Consume(sub.queue, "stomp-"+id, mode == "auto", exclusive, nil, func(tag string) { sub.tag = tag })
	if err != nil {
		sess.mu.Lock()
		delete(sess.subs, id)
		sess.mu.Unlock()
		return fail(err)
	}
	return nil
}

// subQueue is the queue behind a SUBSCRIBE to /exchange/ or /topic/, as
// RabbitMQ Web-STOMP makes it:
//
//   - by default an exclusive, auto-delete queue of the session, named by
//     the server or by the x-queue-name header;
//   - with durable:true (or the older persistent:true) and an id header, a
//     durable, shared queue named by x-queue-name or derived from the
//     destination and id (stomp-subscription-...), so that a later SUBSCRIBE
//     with the same id and destination finds it and the messages routed
//     to it meanwhile. It is auto-delete unless auto-delete:false is given
//     (RabbitMQ's default): only with auto-delete:false does it outlive
//     its last consumer. UNSUBSCRIBE with durable:true deletes it.
func subQueue(f *stompFrame, dest string, args mapping.Table) (mapping.QueueSpec, error) {
	durable, err := stompDurable(f)
	if err != nil {
		return mapping.QueueSpec{}, err
	}
	if !durable {
		return mapping.QueueSpec{Name: f.get("x-queue-name"), Exclusive: true, AutoDelete: true, Args: args}, nil
	}
	autoDelete, err := stompBool(f, "auto-delete", true)
	if err != nil {
		return mapping.QueueSpec{}, err
	}
	name, err := durableQueueName(f, dest)
	if err != nil {
		return mapping.QueueSpec{}, err
	}
	return mapping.QueueSpec{Name: name, Durable: true, AutoDelete: autoDelete, Args: args}, nil
}

// durableQueueName is the queue of a durable subscription: x-queue-name,
// or the name derived from the destination and id.
func durableQueueName(f *stompFrame, dest string) (string, error) {
	if name := f.get("x-queue-name"); name != "" {
		return name, nil
	}
	id := f.get("id")
	if id == "" {
		return "", wsconn.Errorf(http.StatusBadRequest, "a durable subscription needs an id header (or x-queue-name): its queue is found again by it")
	}
	return durableSubName(dest, id), nil
}

// durableSubName derives a durable subscription's queue name from its
// destination and id, as RabbitMQ does: an MD5 digest (only to bound the
// length) in URL-safe base64 after "stomp-subscription-", which policies
// can match.
func durableSubName(dest, id string) string {
	sum := md5.Sum([]byte(dest + "\x00" + id))
	return "stomp-subscription-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// stompDurable reads durable:, or persistent: (its older name), from a
// SUBSCRIBE or UNSUBSCRIBE.
func stompDurable(f *stompFrame) (bool, error) {
	d, err := stompBool(f, "durable", false)
	if err != nil {
		return false, err
	}
	p, err := stompBool(f, "persistent", false)
	return d || p, err
}

// stompBool reads a true/false header; def when it is absent.
func stompBool(f *stompFrame, name string, def bool) (bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, wsconn.Errorf(http.StatusBadRequest, "header %s must be true or false, got '%s'", name, v)
}

// SUBSCRIBE headers that RabbitMQ turns into queue arguments, by type.
var (
	stompIntArgs    = []string{"x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-max-priority"}
	stompStringArgs = []string{"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-overflow"}
)

// stompQueueArgs converts the queue-argument headers of a SUBSCRIBE into
// queue arguments (integers as AMQP long, strings trimmed); nil when
// there are none.
func stompQueueArgs(f *stompFrame) (mapping.Table, error) {
	var args mapping.Table
	put := func(k string, v any) {
		if args == nil {
			args = mapping.Table{}
		}
		args[k] = v
	}
	for _, k := range stompIntArgs {
		v, ok := f.lookup(k)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return nil, wsconn.Errorf(http.StatusBadRequest, "header %s must be a whole number, 0 or more, got '%s'", k, v)
		}
		put(k, n)
	}
	for _, k := range stompStringArgs {
		if v, ok := f.lookup(k); ok {
			put(k, strings.TrimSpace(v))
		}
	}
	if v, ok := f.lookup("x-queue-type"); ok {
		// the core decides which types exist and what each may be
		put("x-queue-type", strings.TrimSpace(v))
	}
	return args, nil
}

// unsubscribe ends a subscription. With durable:true (or persistent:true)
// it also deletes the queue of a durable subscription, as RabbitMQ does;
// that works for a subscription of an earlier session too, when the
// frame names its destination and id (or x-queue-name).
func (sess *stompSession) unsubscribe(f *stompFrame) error {
	durable, err := stompDurable(f)
	if err != nil {
		return err
	}
	id := f.get("id")
	if id == "" {
		id = f.get("destination")
	}
	sess.mu.Lock()
	sub := sess.subs[id]
	delete(sess.subs, id)
	if sub != nil && sess.temps[sub.dest] == sub {
		delete(sess.temps, sub.dest)
	}
	sess.mu.Unlock()
	if sub == nil {
		if durable && f.get("destination") != "" {
			return sess.dropDurable(f)
		}
		return wsconn.Errorf(http.StatusNotFound, "no subscription '%s'", id)
	}
	sub.ch.Cancel(sub.tag)
	if sub.temp {
		sub.ch.DeleteQueue(sub.queue, false, false)
	}
	if durable && sub.durable {
		if _, err := sub.ch.DeleteQueue(sub.queue, false, false); err != nil {
			sub.ch.Close()
			sess.wc.Forget(sub.ch)
			return err
		}
	}
	sub.ch.Close()
	sess.wc.Forget(sub.ch)
	return nil
}

// dropDurable deletes the queue of a durable subscription that is not
// active in this session.
func (sess *stompSession) dropDurable(f *stompFrame) error {
	dest := f.get("destination")
	d, err := parseDest(dest)
	if err != nil {
		return err
	}
	if d.kind != "exchange" && d.kind != "topic" {
		return wsconn.Errorf(http.StatusBadRequest, "durable subscriptions are to /topic/ or /exchange/ destinations, not '%s'", dest)
	}
	name, err := durableQueueName(f, dest)
	if err != nil {
		return err
	}
	if _, err := sess.ctl.DeclareQueue(mapping.QueueSpec{Name: name}, true); err != nil {
		return err
	}
	_, err = sess.ctl.DeleteQueue(name, false, false)
	return err
}

// ack handles ACK and NACK. client mode acks cumulatively (every
// message of the subscription up to this one), client-individual one.
func (sess *stompSession) ack(f *stompFrame) error {
	id := f.get("id")
	if id == "" || sess.version != "1.2" {
		if v := f.get("message-id"); v != "" {
			id = v
		}
	}
	i := strings.LastIndex(id, "@@")
	if !strings.HasPrefix(id, "T_") || i < 0 {
		return wsconn.Errorf(http.StatusBadRequest, "%s: unknown ack id '%s'", f.command, id)
	}
	subID := id[2:i]
	tag, err := strconv.ParseUint(id[i+2:], 10, 64)
	if err != nil {
		return wsconn.Errorf(http.StatusBadRequest, "%s: unknown ack id '%s'", f.command, id)
	}
	sess.mu.Lock()
	sub := sess.subs[subID]
	sess.mu.Unlock()
	if sub == nil {
		return wsconn.Errorf(http.StatusNotFound, "%s for subscription '%s', which does not exist", f.command, subID)
	}
	if sub.ackMode == "auto" {
		return wsconn.Errorf(http.StatusBadRequest, "%s on subscription '%s', whose ack mode is auto", f.command, subID)
	}
	multiple := sub.ackMode == "client"
	if f.command == "ACK" {
		return sub.ch.Ack(tag, multiple)
	}
	requeue := f.get("requeue") != "false"
	return sub.ch.Nack(tag, multiple, requeue)
}

func (sess *stompSession) transaction(f *stompFrame) error {
	txn := f.get("transaction")
	if txn == "" {
		return wsconn.Errorf(http.StatusBadRequest, "%s needs a transaction header", f.command)
	}
	sess.mu.Lock()
	frames, ok := sess.tx[txn]
	switch f.command {
	case "BEGIN":
		if ok {
			sess.mu.Unlock()
			return wsconn.Errorf(http.StatusBadRequest, "transaction '%s' is already open", txn)
		}
		sess.tx[txn] = []*stompFrame{}
		sess.mu.Unlock()
		return nil
	}
	delete(sess.tx, txn)
	sess.mu.Unlock()
	if !ok {
		return wsconn.Errorf(http.StatusBadRequest, "no transaction '%s'", txn)
	}
	if f.command == "ABORT" {
		return nil
	}
	for _, tf := range frames {
		var err error
		switch tf.command {
		case "SEND":
			err = sess.sendFrame(tf, false)
		default:
			err = sess.ack(tf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// STOMP headers that are not copied into AMQP headers.
var stompReserved = map[string]bool{
	"destination": true, "receipt": true, "transaction": true, "content-length": true,
	"content-type": true, "content-encoding": true, "persistent": true, "priority": true,
	"correlation-id": true, "reply-to": true, "expiration": true, "amqp-message-id": true,
	"message-id": true, "timestamp": true, "type": true, "user-id": true, "app-id": true,
	"cluster-id": true, "subscription": true, "ack": true, "redelivered": true,
}

// stompPropsIn maps SEND headers to AMQP properties (RabbitMQ's mapping).
func stompPropsIn(f *stompFrame) (mapping.Properties, error) {
	var p mapping.Properties
	p.ContentType = f.get("content-type")
	p.ContentEncoding = f.get("content-encoding")
	if f.get("persistent") == "true" {
		p.DeliveryMode = 2
	}
	if v := f.get("priority"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			return p, wsconn.Errorf(http.StatusBadRequest, "priority must be 0 to 255, got '%s'", v)
		}
		p.Priority = uint8(n)
	}
	p.CorrelationID = f.get("correlation-id")
	p.ReplyTo = f.get("reply-to")
	p.Expiration = f.get("expiration")
	p.MessageID = f.get("amqp-message-id")
	if p.MessageID == "" {
		p.MessageID = f.get("message-id")
	}
	if v := f.get("timestamp"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return p, wsconn.Errorf(http.StatusBadRequest, "timestamp must be Unix seconds, got '%s'", v)
		}
		p.Timestamp = time.Unix(n, 0).UTC()
	}
	p.Type = f.get("type")
	p.UserID = f.get("user-id")
	p.AppID = f.get("app-id")
	p.ClusterID = f.get("cluster-id")
	for _, h := range f.headers {
		if stompReserved[h[0]] {
			continue
		}
		if p.Headers == nil {
			p.Headers = mapping.Table{}
		}
		if _, dup := p.Headers[h[0]]; !dup {
			p.Headers[h[0]] = h[1]
		}
	}
	return p, nil
}

// stompPropsOut adds a delivery's AMQP properties and headers to a
// MESSAGE frame.
func stompPropsOut(f *stompFrame, p *mapping.Properties) {
	str := func(k, v string) {
		if v != "" {
			f.set(k, v)
		}
	}
	str("content-type", p.ContentType)
	str("content-encoding", p.ContentEncoding)
	if p.DeliveryMode == 2 {
		f.set("persistent", "true")
	}
	if p.Priority != 0 {
		f.set("priority", strconv.Itoa(int(p.Priority)))
	}
	str("correlation-id", p.CorrelationID)
	if rt := p.ReplyTo; rt != "" {
		if !strings.HasPrefix(rt, "/") {
			rt = "/reply-queue/" + rt
		}
		f.set("reply-to", rt)
	}
	str("expiration", p.Expiration)
	str("amqp-message-id", p.MessageID)
	if !p.Timestamp.IsZero() {
		f.set("timestamp", strconv.FormatInt(p.Timestamp.Unix(), 10))
	}
	str("type", p.Type)
	str("user-id", p.UserID)
	str("app-id", p.AppID)
	str("cluster-id", p.ClusterID)
	for k, v := range p.Headers {
		if stompReserved[k] {
			continue
		}
		switch x := v.(type) {
		case string:
			f.set(k, x)
		case []byte:
			f.set(k, string(x))
		case time.Time:
			f.set(k, strconv.FormatInt(x.Unix(), 10))
		case mapping.Table, []any:
			// nested values have no STOMP form; RabbitMQ drops them too
		default:
			f.set(k, strings.Trim(string(wsconn.AppendValue(nil, msgcodec.ValueToJSON(v))), `"`))
		}
	}
}
