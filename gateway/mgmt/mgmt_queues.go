package mgmt

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

type mgQueueJSON struct {
	Name                   string         `json:"name"`
	VHost                  string         `json:"vhost"`
	Type                   string         `json:"type"`
	Durable                bool           `json:"durable"`
	AutoDelete             bool           `json:"auto_delete"`
	Exclusive              bool           `json:"exclusive"`
	Arguments              map[string]any `json:"arguments"`
	Node                   string         `json:"node"`
	Leader                 string         `json:"leader,omitempty"`  // quorum queues: the Raft leader's node
	Members                []string       `json:"members,omitempty"` // quorum queues: the nodes holding a replica
	Online                 []string       `json:"online,omitempty"`  // quorum queues: the members that are up
	State                  string         `json:"state"`
	Policy                 any            `json:"policy"`
	ExclusiveConsumerTag   any            `json:"exclusive_consumer_tag"`
	OwnerPidDetails        map[string]any `json:"owner_pid_details,omitempty"`
	Consumers              int            `json:"consumers"`
	Messages               int            `json:"messages"`
	MessagesDetails        rateDetails    `json:"messages_details"`
	MessagesReady          int            `json:"messages_ready"`
	MessagesReadyDetails   rateDetails    `json:"messages_ready_details"`
	MessagesUnacked        int            `json:"messages_unacknowledged"`
	MessagesUnackedDetails rateDetails    `json:"messages_unacknowledged_details"`
	MessageBytesReady      int64          `json:"message_bytes_ready"`
	MessageStats           map[string]any `json:"message_stats"`
}

func (m *mgmt) queueOut(q mapping.QueueStats) mgQueueJSON {
	r := m.rates.rates("q\x00"+q.VHost+"\x00"+q.Name,
		float64(q.Messages()), float64(q.Ready), float64(q.Unacked),
		float64(q.Published), float64(q.Delivered), float64(q.Acked))
	node := m.node
	if q.Node != "" {
		node = q.Node // in a cluster: the queue's home
	}
	out := mgQueueJSON{
		Name: q.Name, VHost: q.VHost, Type: q.Type, Durable: q.Durable, AutoDelete: q.AutoDelete,
		Exclusive: q.Exclusive, Arguments: msgcodec.TableToJSON(q.Arguments), Node: node, State: "running",
		Consumers: q.Consumers,
		Messages:  q.Messages(), MessagesDetails: rateDetails{r[0]},
		MessagesReady: q.Ready, MessagesReadyDetails: rateDetails{r[1]},
		MessagesUnacked: q.Unacked, MessagesUnackedDetails: rateDetails{r[2]},
		MessageBytesReady: q.ReadyBytes,
		MessageStats: map[string]any{
			"publish": q.Published, "publish_details": rateDetails{r[3]},
			"deliver_get": q.Delivered, "deliver_get_details": rateDetails{r[4]},
			"ack": q.Acked, "ack_details": rateDetails{r[5]},
		},
	}
	switch {
	case q.Leader != "" || len(q.Members) > 0:
		// a replicated quorum queue: its home is the leader
		out.Node, out.Leader, out.Members, out.Online = q.Leader, q.Leader, q.Members, q.Online
		if out.Online == nil {
			out.Online = []string{}
		}
	case q.Type == mapping.QueueTypeQuorum:
		// one node: the queue's only member, which also leads it
		out.Leader, out.Members, out.Online = node, []string{node}, []string{node}
	}
	if q.Owner != "" {
		out.OwnerPidDetails = map[string]any{"name": q.Owner}
	}
	return out
}

func (m *mgmt) listQueues(c echo.Context) error {
	vhs, err := m.vhostsParam(c)
	if err != nil {
		return err
	}
	out := []mgQueueJSON{}
	for _, vh := range vhs {
		for _, q := range vh.Queues() {
			out = append(out, m.queueOut(q))
		}
	}
	return mgList(c, out)
}

// queueParams resolves /queues/:vhost/:name.
func (m *mgmt) queueParams(c echo.Context) (*mapping.VHost, string, error) {
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return nil, "", err
	}
	name, err := mgParam(c, "name")
	if err != nil {
		return nil, "", err
	}
	vh, err := m.vhost(c, vhost)
	return vh, name, err
}

func (m *mgmt) getQueue(c echo.Context) error {
	vh, name, err := m.queueParams(c)
	if err != nil {
		return err
	}
	q, err := vh.Queue(name)
	if err != nil {
		return coreError(err)
	}
	out := m.queueOut(q)
	cds := []map[string]any{}
	for _, k := range m.s.router.Consumers() {
		if k.VHost == q.VHost && k.Queue == q.Name {
			cds = append(cds, mgConsumerOut(k))
		}
	}
	b := map[string]any{}
	// one level of embedding: the listing fields plus consumer_details
	for k, v := range mgStructMap(out) {
		b[k] = v
	}
	b["consumer_details"] = cds
	return c.JSON(http.StatusOK, b)
}

// mgQueueBody is what PUT /api/queues/{vhost}/{name} takes.
type mgQueueBody struct {
	Durable    mgFlexBool     `json:"durable"`
	AutoDelete mgFlexBool     `json:"auto_delete"`
	Exclusive  mgFlexBool     `json:"exclusive"`
	Arguments  map[string]any `json:"arguments"`
	// Node, in a cluster, is the node to create the queue on (as in
	// RabbitMQ's API); ignored by a single node and for an existing queue.
	Node string `json:"node"`
}

func (m *mgmt) putQueue(c echo.Context) error {
	vh, name, err := m.queueParams(c)
	if err != nil {
		return err
	}
	var body mgQueueBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	if name == "" {
		return apiError(http.StatusBadRequest, "the queue name must not be empty")
	}
	_, lookErr := vh.Queue(name)
	args, err := msgcodec.TableFromJSON(body.Arguments, "arguments")
	if err != nil {
		return err
	}
	spec := mapping.QueueSpec{
		Name: name, Durable: body.Durable.or(false), AutoDelete: body.AutoDelete.or(false),
		Exclusive: body.Exclusive.or(false), Args: args, Node: body.Node,
	}
	if spec.Exclusive {
		return apiError(http.StatusBadRequest, "an exclusive queue would be deleted at the end of this request: declare it over AMQP or WebSocket")
	}
	err = m.withChannel(c, vh.Name(), func(ch *mapping.Channel) error {
		_, err := ch.DeclareQueue(spec, false)
		return err
	})
	if err != nil {
		return err
	}
	return mgCreated(c, lookErr == nil)
}

func (m *mgmt) deleteQueue(c echo.Context) error {
	return m.onExistingQueue(c, func(ch *mapping.Channel, name string) error {
		_, err := ch.DeleteQueue(name, mgBoolParam(c, "if-unused"), mgBoolParam(c, "if-empty"))
		return err
	})
}

func (m *mgmt) purgeQueue(c echo.Context) error {
	return m.onExistingQueue(c, func(ch *mapping.Channel, name string) error {
		_, err := ch.PurgeQueue(name)
		return err
	})
}

// onExistingQueue runs op as the user on the queue named in the path (404
// when it does not exist, as RabbitMQ answers DELETE of a missing queue
// here) and answers 204.
func (m *mgmt) onExistingQueue(c echo.Context, op func(ch *mapping.Channel, name string) error) error {
	vh, name, err := m.queueParams(c)
	if err != nil {
		return err
	}
	if _, err := vh.Queue(name); err != nil {
		return coreError(err)
	}
	if err := m.withChannel(c, vh.Name(), func(ch *mapping.Channel) error { return op(ch, name) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (m *mgmt) queueBindings(c echo.Context) error {
	vh, name, err := m.queueParams(c)
	if err != nil {
		return err
	}
	if _, err := vh.Queue(name); err != nil {
		return coreError(err)
	}
	out := []mgBindingJSON{}
	for _, b := range vh.Bindings() {
		if b.DestinationType == "queue" && b.Destination == name {
			out = append(out, mgBindingOut(b))
		}
	}
	return mgList(c, out)
}

// mgMaxGetCount bounds one POST .../get.
const mgMaxGetCount = 10000

type mgGotMessage struct {
	PayloadBytes    int            `json:"payload_bytes"`
	Redelivered     bool           `json:"redelivered"`
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	MessageCount    int            `json:"message_count"`
	Properties      msgcodec.Props `json:"properties"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

// mgGetBody is what POST /api/queues/{vhost}/{name}/get takes.
type mgGetBody struct {
	Count    mgFlexInt `json:"count"`
	AckMode  string    `json:"ackmode"`
	Encoding string    `json:"encoding"`
	Truncate mgFlexInt `json:"truncate"`
}

// getMessages is POST /api/queues/{vhost}/{name}/get: up to count
// messages, then acked (ack_requeue_false), rejected without requeue
// (reject_requeue_false, dead-lettered as over AMQP) or mgPut back
// (ack_requeue_true, reject_requeue_true; they come back redelivered).
func (m *mgmt) getMessages(c echo.Context) error {
	vh, name, err := m.queueParams(c)
	if err != nil {
		return err
	}
	var body mgGetBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	if !body.Count.Set {
		return apiError(http.StatusBadRequest, "key 'count' is mandatory")
	}
	if body.Count.Value < 1 || body.Count.Value > mgMaxGetCount {
		return apiError(http.StatusBadRequest, fmt.Sprintf("count must be 1 to %d", mgMaxGetCount))
	}
	switch body.AckMode {
	case "ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false":
	case "":
		return apiError(http.StatusBadRequest, "key 'ackmode' is mandatory: ack_requeue_true, ack_requeue_false, reject_requeue_true or reject_requeue_false")
	default:
		return apiError(http.StatusBadRequest, fmt.Sprintf("unknown ackmode '%s': use ack_requeue_true, ack_requeue_false, reject_requeue_true or reject_requeue_false", body.AckMode))
	}
	switch body.Encoding {
	case "auto", "base64":
	case "":
		return apiError(http.StatusBadRequest, "key 'encoding' is mandatory: auto or base64")
	default:
		return apiError(http.StatusBadRequest, fmt.Sprintf("unknown encoding '%s': use auto or base64", body.Encoding))
	}
	if _, err := vh.Queue(name); err != nil {
		return coreError(err)
	}
	out := []mgGotMessage{}
	err = m.withChannel(c, vh.Name(), func(ch *mapping.Channel) error {
		var tags []uint64
		for range body.Count.Value {
			d, remaining, ok, err := ch.Get(name, false)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			tags = append(tags, d.Tag)
			out = append(out, mgGotOut(d, remaining, body.Encoding, body.Truncate))
		}
		for _, t := range tags {
			var err error
			switch body.AckMode {
			case "ack_requeue_false":
				err = ch.Ack(t, false)
			case "reject_requeue_false":
				err = ch.Nack(t, false, false)
			default:
				err = ch.Nack(t, false, true)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func mgGotOut(d mapping.Delivery, remaining int, encoding string, truncate mgFlexInt) mgGotMessage {
	msg := d.Message
	body := msg.Body
	if truncate.Set && truncate.Value >= 0 && int64(len(body)) > truncate.Value {
		body = body[:truncate.Value]
	}
	g := mgGotMessage{
		PayloadBytes: len(msg.Body), Redelivered: d.Redelivered, Exchange: msg.Exchange,
		RoutingKey: msg.RoutingKey, MessageCount: remaining, Properties: msgcodec.PropsToJSON(&msg.Properties),
	}
	if encoding == "auto" && utf8.Valid(body) {
		g.Payload, g.PayloadEncoding = string(body), "string"
	} else {
		g.Payload, g.PayloadEncoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	return g
}
