package websocket

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// JSON protocol limits.
const (
	wsMaxInflight       = 256              // unconfirmed publishes before flow {active:false}
	wsDefaultRPCTimeout = 30 * time.Second // rpc without timeout_ms
	wsMaxRPCTimeout     = 5 * time.Minute
	wsMaxPendingRPCs    = 1024
)

// wsJSON serves GET /v1/ws: Warren's JSON protocol.
func (s *Server) wsJSON(c echo.Context) error {
	a, authed, err := s.ws().UpgradeAuth(c)
	if err != nil {
		return err
	}
	st := s.ws()
	ws, err := st.Upgrader([]string{wsSubprotocol}).Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	wc := wsconn.New(ws, websocket.TextMessage)
	sess := &jsonSession{s: s, peer: wsconn.NewPeer(c), wc: wc, subs: map[string]*jsonSub{}, rpcs: map[string]*wsRPCCall{}, flowWake: make(chan struct{}, 1)}
	s.ws().Start(wc, func() { sess.run(a, authed) })
	return nil
}

// jsonSession is one /v1/ws session. Its reader (run) handles requests one
// at a time; replies and deliveries go through wc.
type jsonSession struct {
	s    *Server
	peer *wsconn.Peer
	wc   *wsconn.Conn
	auth wsconn.Auth
	conn *mapping.Conn
	ctl  *mapping.Channel // publishes, declarations, RPC replies

	mu        sync.Mutex // guards what core callbacks touch
	subs      map[string]*jsonSub
	rpcs      map[string]*wsRPCCall // correlation id -> pending call
	replyOn   bool
	rpcSeq    uint64
	inflight  int
	nextChan  int
	nextSubID int

	flowWake chan struct{}
	expiry   *time.Timer // closes the session when its token expires
}

type wsRPCCall struct {
	id    json.RawMessage
	timer *time.Timer
}

// jsonSub is one subscription: its own core channel (so that its
// prefetch and delivery tags are its own) and consumer.
type jsonSub struct {
	sess  *jsonSession
	id    string
	ch    *mapping.Channel
	tag   string
	queue string
	temp  bool // a server-named queue the gateway declared for it
	noAck bool
}

// Deliver implements mapping.Sink (core locks held: only queue).
func (sub *jsonSub) Deliver(d mapping.Delivery) bool {
	return sub.sess.wc.Deliver(sub.ch, sub, d)
}

// Cancelled implements mapping.Sink: the queue went away, or its home
// node is down.
func (sub *jsonSub) Cancelled(_ string, reason error) {
	sub.sess.wc.Send(wsFrame("cancelled", nil, "subscription", sub.id, "reason", reason.Error()))
}

func (sub *jsonSub) EncodeDelivery(b []byte, d mapping.Delivery) []byte {
	b = append(b, `{"op":"message","subscription":`...)
	b = wsconn.AppendString(b, sub.id)
	b = append(b, `,"delivery_tag":`...)
	b = strconv.AppendUint(b, d.Tag, 10)
	b = append(b, `,"redelivered":`...)
	b = strconv.AppendBool(b, d.Redelivered)
	b = wsAppendMessageShared(b, d.Message)
	return append(b, '}')
}

// wsCtlSink receives RPC replies on the control channel.
type wsCtlSink jsonSession

func (cs *wsCtlSink) Deliver(d mapping.Delivery) bool {
	sess := (*jsonSession)(cs)
	sess.mu.Lock()
	call := sess.rpcs[d.Message.Properties.CorrelationID]
	delete(sess.rpcs, d.Message.Properties.CorrelationID)
	sess.mu.Unlock()
	if call == nil {
		return true // late or unknown reply: dropped, as RabbitMQ does
	}
	call.timer.Stop()
	return sess.wc.Deliver(sess.ctl, wsReplyEncoder{call.id}, d)
}

func (cs *wsCtlSink) Cancelled(string, error) {}

type wsReplyEncoder struct{ id json.RawMessage }

func (r wsReplyEncoder) EncodeDelivery(b []byte, d mapping.Delivery) []byte {
	b = append(b, `{"op":"reply"`...)
	if len(r.id) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, r.id...)
	}
	b = wsAppendMessage(b, d.Message)
	return append(b, '}')
}

func (sess *jsonSession) reply(id json.RawMessage, kv ...any) {
	if len(id) == 0 {
		return
	}
	sess.wc.Send(wsFrame("ok", id, kv...))
}

func (sess *jsonSession) fail(id json.RawMessage, err error) {
	sess.wc.Send(wsErrorFrame(id, err))
}

// run is the reader: authentication, then one request at a time.
func (sess *jsonSession) run(a wsconn.Auth, authed bool) {
	wc := sess.wc
	ws := wc.WS
	limit := int64(16 << 20)
	if sess.s.router != nil {
		limit = sess.s.router.MaxMessageSize()
	}
	ws.SetReadLimit(limit*4/3 + 64<<10) // base64 payload plus the frame around it
	ws.SetPongHandler(func(string) error { wc.Alive(wsconn.PongWait); return nil })
	if authed {
		wc.Alive(wsconn.PongWait)
		if !sess.start(a, nil) {
			return
		}
	} else {
		wc.Alive(wsconn.AuthWait)
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				wc.Kill(websocket.CloseMessageTooBig, "frame larger than the limit")
			}
			break
		}
		wc.Alive(wsconn.PongWait)
		var req wsRequest
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			if sess.conn == nil {
				wc.Kill(wsconn.CloseProtocol, "the first frame must be {\"op\":\"auth\",...}: "+err.Error())
				break
			}
			sess.fail(nil, wsconn.Errorf(http.StatusBadRequest, "frame is not a JSON request object: %v", err))
			continue
		}
		if sess.conn == nil {
			if req.Op != "auth" {
				wc.Kill(wsconn.CloseAuthFailed, "not authenticated: send {\"op\":\"auth\",\"token\":...} first, or connect with ?token=")
				break
			}
			vhost := req.VHost
			if vhost == "" {
				vhost = "/"
			}
			a, err := sess.s.ws().LoginPassword(sess.peer, req.Username, req.Password, req.Token, vhost)
			if err != nil {
				sess.fail(req.ID, wsWithStatus(err, http.StatusUnauthorized))
				wc.Kill(wsconn.CloseAuthFailed, "authentication failed")
				break
			}
			if !sess.start(a, req.ID) {
				break
			}
			continue
		}
		sess.handle(&req)
		if !sess.waitFlow() {
			break
		}
	}
	sess.end()
}

// wsWithStatus gives access-refused login errors the HTTP 401 meaning.
func wsWithStatus(err error, status int) error {
	if mapping.KindOf(err) == mapping.KindAccessRefused {
		return &wsconn.Error{Code: status, Message: err.Error()}
	}
	return err
}

// start opens the core connection and greets the client.
func (sess *jsonSession) start(a wsconn.Auth, id json.RawMessage) bool {
	conn, err := sess.s.ws().ConnectCore(sess.peer, a, "WebSocket", sess.wc)
	if err != nil {
		sess.fail(id, err)
		sess.wc.Kill(wsconn.CloseVHostRefused, err.Error())
		return false
	}
	sess.auth = a
	sess.conn = conn
	sess.nextChan = 1
	sess.ctl = conn.OpenChannel(sess.nextChan, (*wsCtlSink)(sess))
	kv := []any{"user", a.User, "vhost", a.VHost, "protocol", wsSubprotocol, "max_payload", sess.s.router.MaxMessageSize()}
	if !a.Expires.IsZero() {
		kv = append(kv, "expires_at", a.Expires.UTC().Format(time.RFC3339))
		d := time.Until(a.Expires)
		sess.expiry = time.AfterFunc(d, func() { sess.wc.Kill(wsconn.CloseAuthFailed, "token expired") })
	}
	sess.wc.Send(wsFrame("welcome", id, kv...))
	return true
}

// end closes the core connection: unacked messages are requeued and the
// session's exclusive queues deleted.
func (sess *jsonSession) end() {
	if sess.expiry != nil {
		sess.expiry.Stop()
	}
	sess.mu.Lock()
	for k, call := range sess.rpcs {
		call.timer.Stop()
		delete(sess.rpcs, k)
	}
	sess.mu.Unlock()
	if sess.conn != nil {
		sess.conn.Close()
	}
}

// waitFlow holds the reader while too many publishes are unconfirmed,
// telling the client with flow frames. false: the session ended.
func (sess *jsonSession) waitFlow() bool {
	sess.mu.Lock()
	over := sess.inflight >= wsMaxInflight
	sess.mu.Unlock()
	if !over {
		return true
	}
	sess.wc.Send(wsFrame("flow", nil, "active", false))
	for {
		select {
		case <-sess.flowWake:
		case <-sess.wc.Dying:
			return false
		}
		sess.mu.Lock()
		over = sess.inflight > wsMaxInflight/2
		sess.mu.Unlock()
		if !over {
			sess.wc.Send(wsFrame("flow", nil, "active", true))
			return true
		}
	}
}

func (sess *jsonSession) handle(req *wsRequest) {
	var err error
	switch req.Op {
	case "publish":
		err = sess.publish(req)
	case "subscribe":
		err = sess.subscribe(req)
	case "unsubscribe":
		err = sess.unsubscribe(req)
	case "ack", "nack", "reject":
		err = sess.settle(req)
	case "rpc":
		err = sess.rpc(req)
	case "declare_queue":
		var qi mapping.QueueInfo
		var args mapping.Table
		if args, err = wsArgs(req.Arguments); err == nil {
			qi, err = sess.ctl.DeclareQueue(mapping.QueueSpec{
				Name: req.Queue, Durable: req.Durable, Exclusive: req.Exclusive, AutoDelete: req.AutoDelete, Args: args,
			}, req.Passive)
		}
		if err == nil {
			sess.reply(req.ID, "queue", qi.Name, "messages", qi.Messages, "consumers", qi.Consumers)
		}
	case "declare_exchange":
		var args mapping.Table
		if args, err = wsArgs(req.Arguments); err == nil {
			typ := req.Type
			if typ == "" && !req.Passive {
				typ = mapping.TypeDirect
			}
			err = sess.ctl.DeclareExchange(mapping.ExchangeSpec{
				Name: req.Exchange, Type: typ, Durable: req.Durable, AutoDelete: req.AutoDelete, Internal: req.Internal, Args: args,
			}, req.Passive)
		}
		if err == nil {
			sess.reply(req.ID, "exchange", req.Exchange)
		}
	case "bind", "unbind":
		err = sess.bind(req, req.Op == "bind")
	case "delete_queue":
		var n int
		if n, err = sess.ctl.DeleteQueue(req.Queue, req.IfUnused, req.IfEmpty); err == nil {
			sess.reply(req.ID, "messages", n)
		}
	case "delete_exchange":
		if err = sess.ctl.DeleteExchange(req.Exchange, req.IfUnused); err == nil {
			sess.reply(req.ID)
		}
	case "ping":
		sess.reply(req.ID)
	case "auth":
		err = wsconn.Errorf(http.StatusBadRequest, "already authenticated as '%s'", sess.auth.User)
	case "":
		err = wsconn.Errorf(http.StatusBadRequest, "frame has no \"op\"")
	default:
		err = wsconn.Errorf(http.StatusBadRequest, "unknown op '%s'", req.Op)
	}
	if err != nil {
		sess.fail(req.ID, err)
	}
	if errors.Is(err, wsErrFatal) {
		sess.wc.Kill(wsconn.CloseProtocol, err.Error())
	}
}

var wsErrFatal = errors.New("fatal")

func wsArgs(m map[string]any) (mapping.Table, error) {
	return msgcodec.TableFromJSON(m, "arguments")
}

// message builds a core message from a publish or rpc request.
func (sess *jsonSession) message(req *wsRequest) (*mapping.Message, error) {
	body, err := msgcodec.DecodePayload(req.Payload, req.PayloadEncoding, "payload")
	if err != nil {
		return nil, err
	}
	props, err := msgcodec.PropsFromJSON(req.Properties, 0, "properties")
	if err != nil {
		return nil, err
	}
	return &mapping.Message{Exchange: req.Exchange, RoutingKey: req.RoutingKey, Properties: props, Body: body}, nil
}

// wsPubResult answers a publish once both the core's Publish returned
// (routed) and the store confirmed (done), in whichever order.
type wsPubResult struct {
	sess   *jsonSession
	id     json.RawMessage
	mu     sync.Mutex
	n      int
	routed bool
	final  mapping.Outcome
}

func (p *wsPubResult) finish() {
	p.mu.Lock()
	p.n++
	last := p.n == 2
	p.mu.Unlock()
	if !last {
		return
	}
	sess := p.sess
	if err := p.final.Err(); err != nil {
		sess.fail(p.id, err)
	} else {
		sess.reply(p.id, "routed", p.routed)
	}
	sess.mu.Lock()
	sess.inflight--
	sess.mu.Unlock()
	select {
	case sess.flowWake <- struct{}{}:
	default:
	}
}

func (sess *jsonSession) publish(req *wsRequest) error {
	m, err := sess.message(req)
	if err != nil {
		return err
	}
	if m.Properties.ReplyTo == mapping.DirectReplyTo {
		return wsconn.Errorf(http.StatusBadRequest, "use the rpc op for requests that expect a reply on amq.rabbitmq.reply-to")
	}
	p := &wsPubResult{sess: sess, id: req.ID}
	sess.mu.Lock()
	sess.inflight++
	sess.mu.Unlock()
	out := sess.ctl.Publish(m, func(o mapping.Outcome) {
		p.mu.Lock()
		p.final = o
		p.mu.Unlock()
		p.finish()
	})
	if err := out.Err(); err != nil {
		// done is not called when Publish refuses the message.
		sess.mu.Lock()
		sess.inflight--
		sess.mu.Unlock()
		return err
	}
	p.mu.Lock()
	p.routed = out.Routed
	p.mu.Unlock()
	p.finish()
	sess.ctl.WaitFlow(sess.wc.Dying)
	return nil
}

func (sess *jsonSession) subscribe(req *wsRequest) error {
	noAck := true
	switch req.Ack {
	case "", "auto":
	case "client", "manual":
		noAck = false
	default:
		return wsconn.Errorf(http.StatusBadRequest, "unknown ack mode '%s': use 'auto' or 'client'", req.Ack)
	}
	prefetch := 0
	if req.Prefetch != nil {
		if *req.Prefetch < 0 || *req.Prefetch > 65535 {
			return wsconn.Errorf(http.StatusBadRequest, "prefetch must be 0 (no limit) to 65535")
		}
		prefetch = *req.Prefetch
	} else if !noAck {
		prefetch = 100
	}
	if (req.Queue == "") == (req.Exchange == "") {
		return wsconn.Errorf(http.StatusBadRequest, "subscribe needs either \"queue\" or \"exchange\" (with \"binding_key\")")
	}
	sess.mu.Lock()
	id := req.Subscription
	if id == "" {
		sess.nextSubID++
		id = "sub-" + strconv.Itoa(sess.nextSubID)
	}
	_, dup := sess.subs[id]
	n := len(sess.subs)
	sess.mu.Unlock()
	if dup {
		return wsconn.Errorf(http.StatusBadRequest, "subscription '%s' already exists", id)
	}
	if n >= wsconn.MaxSubscriptions {
		return wsconn.Errorf(http.StatusTooManyRequests, "a session may have at most %d subscriptions", wsconn.MaxSubscriptions)
	}
	args, err := wsArgs(req.Arguments)
	if err != nil {
		return err
	}
	sess.nextChan++
	sub := &jsonSub{sess: sess, id: id, queue: req.Queue, noAck: noAck}
	sub.ch = sess.conn.OpenChannel(sess.nextChan, sub)
	if req.Exchange != "" {
		qi, err := sub.ch.DeclareQueue(mapping.QueueSpec{Exclusive: true, AutoDelete: true}, false)
		if err != nil {
			sub.ch.Close()
			return err
		}
		sub.queue, sub.temp = qi.Name, true
		if err := sub.ch.BindQueue(qi.Name, req.Exchange, req.BindingKey, args); err != nil {
			sub.ch.DeleteQueue(qi.Name, false, false)
			sub.ch.Close()
			return err
		}
	}
	sub.ch.SetPrefetch(prefetch, false)
	sess.mu.Lock()
	sess.subs[id] = sub
	sess.mu.Unlock()
	err = sub.ch.Consume(sub.queue, "ws-"+id, noAck, false, nil, func(tag string) {
		sub.tag = tag
		sess.wc.Send(wsFrame("ok", req.ID, "subscription", id, "queue", sub.queue))
	})
	if err != nil {
		sess.mu.Lock()
		delete(sess.subs, id)
		sess.mu.Unlock()
		if sub.temp {
			sub.ch.DeleteQueue(sub.queue, false, false)
		}
		sub.ch.Close()
		return err
	}
	return nil
}

func (sess *jsonSession) unsubscribe(req *wsRequest) error {
	sess.mu.Lock()
	sub := sess.subs[req.Subscription]
	delete(sess.subs, req.Subscription)
	sess.mu.Unlock()
	if sub == nil {
		return wsconn.Errorf(http.StatusNotFound, "no subscription '%s'", req.Subscription)
	}
	sub.ch.Cancel(sub.tag)
	if sub.temp {
		sub.ch.DeleteQueue(sub.queue, false, false)
	}
	sub.ch.Close() // requeues what was not acked
	sess.wc.Forget(sub.ch)
	sess.reply(req.ID, "subscription", sub.id)
	return nil
}

func (sess *jsonSession) settle(req *wsRequest) error {
	sess.mu.Lock()
	sub := sess.subs[req.Subscription]
	sess.mu.Unlock()
	if sub == nil {
		return wsconn.Errorf(http.StatusNotFound, "no subscription '%s': give the \"subscription\" of the message", req.Subscription)
	}
	if sub.noAck {
		return wsconn.Errorf(http.StatusBadRequest, "subscription '%s' acknowledges automatically (ack mode 'auto')", sub.id)
	}
	if req.DeliveryTag == 0 && !req.Multiple {
		return wsconn.Errorf(http.StatusBadRequest, "%s needs a \"delivery_tag\"", req.Op)
	}
	var err error
	switch req.Op {
	case "ack":
		err = sub.ch.Ack(req.DeliveryTag, req.Multiple)
	case "nack":
		err = sub.ch.Nack(req.DeliveryTag, req.Multiple, req.Requeue == nil || *req.Requeue)
	case "reject":
		err = sub.ch.Nack(req.DeliveryTag, false, req.Requeue != nil && *req.Requeue)
	}
	if err != nil {
		return err
	}
	sess.reply(req.ID)
	return nil
}

func (sess *jsonSession) rpc(req *wsRequest) error {
	if len(req.ID) == 0 {
		return wsconn.Errorf(http.StatusBadRequest, "rpc needs an \"id\" to match its reply")
	}
	m, err := sess.message(req)
	if err != nil {
		return err
	}
	timeout := wsDefaultRPCTimeout
	if req.TimeoutMS > 0 {
		timeout = min(time.Duration(req.TimeoutMS)*time.Millisecond, wsMaxRPCTimeout)
	}
	sess.mu.Lock()
	if len(sess.rpcs) >= wsMaxPendingRPCs {
		sess.mu.Unlock()
		return wsconn.Errorf(http.StatusTooManyRequests, "too many RPC calls waiting for replies (%d)", wsMaxPendingRPCs)
	}
	needConsumer := !sess.replyOn
	sess.replyOn = true
	sess.mu.Unlock()
	if needConsumer {
		if err := sess.ctl.Consume(mapping.DirectReplyTo, "", true, false, nil, func(string) {}); err != nil {
			sess.mu.Lock()
			sess.replyOn = false
			sess.mu.Unlock()
			return err
		}
	}
	sess.mu.Lock()
	sess.rpcSeq++
	corr := m.Properties.CorrelationID
	if corr == "" || sess.rpcs[corr] != nil {
		corr = "ws-rpc-" + strconv.FormatUint(sess.rpcSeq, 10)
	}
	call := &wsRPCCall{id: req.ID}
	call.timer = time.AfterFunc(timeout, func() {
		sess.mu.Lock()
		mine := sess.rpcs[corr] == call
		if mine {
			delete(sess.rpcs, corr)
		}
		sess.mu.Unlock()
		if mine {
			sess.fail(call.id, wsconn.Errorf(http.StatusGatewayTimeout, "no reply within %v from exchange '%s' routing key '%s'", timeout, m.Exchange, m.RoutingKey))
		}
	})
	sess.rpcs[corr] = call
	sess.mu.Unlock()
	m.Properties.CorrelationID = corr
	m.Properties.ReplyTo = mapping.DirectReplyTo
	out := sess.ctl.Publish(m, nil)
	err = out.Err()
	if err == nil && !out.Routed {
		err = wsconn.Errorf(http.StatusNotFound, "the request was not routed to any queue (exchange '%s', routing key '%s'): is the worker running?", m.Exchange, m.RoutingKey)
	}
	if err != nil {
		sess.mu.Lock()
		if sess.rpcs[corr] == call {
			delete(sess.rpcs, corr)
		}
		sess.mu.Unlock()
		call.timer.Stop()
		return err
	}
	return nil
}

func (sess *jsonSession) bind(req *wsRequest, bind bool) error {
	args, err := wsArgs(req.Arguments)
	if err != nil {
		return err
	}
	key := req.RoutingKey
	if key == "" {
		key = req.BindingKey
	}
	switch {
	case req.DestinationExchange != "" && bind:
		err = sess.ctl.BindExchange(req.DestinationExchange, req.Exchange, key, args)
	case req.DestinationExchange != "":
		err = sess.ctl.UnbindExchange(req.DestinationExchange, req.Exchange, key, args)
	case req.Queue == "":
		return wsconn.Errorf(http.StatusBadRequest, "%s needs \"queue\" or \"destination_exchange\"", req.Op)
	case bind:
		err = sess.ctl.BindQueue(req.Queue, req.Exchange, key, args)
	default:
		err = sess.ctl.UnbindQueue(req.Queue, req.Exchange, key, args)
	}
	if err != nil {
		return err
	}
	sess.reply(req.ID)
	return nil
}
