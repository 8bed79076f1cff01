package mapping

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Exchange types.
const (
	TypeDirect  = "direct"
	TypeFanout  = "fanout"
	TypeTopic   = "topic"
	TypeHeaders = "headers"
)

// DirectReplyTo is RabbitMQ's pseudo-queue for RPC replies without a queue.
const DirectReplyTo = "amq.rabbitmq.reply-to"

// VHost is one virtual host: a namespace of exchanges and queues.
//
// Lock order (the whole order is in locksordering.txt): VHost.topoMu,
// then VHost.mu, then Queue.mu, then Channel.mu, then the front's own sink
// lock. Publishing routes under VHost.mu (read) and enqueues after
// releasing it; topology changes hold topoMu across their store writes
// and VHost.mu only around the in-memory change.
type VHost struct {
	r    *Router
	name string

	// topoMu is the vhost's single topology writer: declare, bind,
	// unbind and delete of exchanges, queues and bindings hold it, store
	// writes included, so that the store sees changes in their order.
	topoMu sync.Mutex

	mu        sync.RWMutex
	exchanges map[string]*exchange
	queues    map[string]*Queue

	// bindIdx finds a binding by its record's key, for a deletion made
	// on another node (cluster only; guarded by mu).
	bindIdx map[string]*binding
	// fresh: unix ns until which an unroutable publish needs no
	// metadata barrier (metawatch.go).
	fresh atomic.Int64

	replyMu sync.RWMutex
	replies map[string]*Channel // direct reply-to key -> channel

	metaMu      sync.Mutex
	description string
	tags        []string
	defaultType string // its own default queue type; "" = the node's
}

func (vh *VHost) setMeta(description string, tags []string, defaultType string) {
	vh.metaMu.Lock()
	vh.description, vh.tags, vh.defaultType = description, append([]string(nil), tags...), defaultType
	vh.metaMu.Unlock()
}

// Meta returns the vhost's description and tags.
func (vh *VHost) Meta() (string, []string) {
	vh.metaMu.Lock()
	defer vh.metaMu.Unlock()
	return vh.description, append([]string{}, vh.tags...)
}

func newVHost(r *Router, name string) *VHost {
	vh := &VHost{r: r, name: name, exchanges: map[string]*exchange{}, queues: map[string]*Queue{}, replies: map[string]*Channel{}, bindIdx: map[string]*binding{}}
	for _, d := range []struct{ name, kind string }{
		{"", TypeDirect},
		{"amq.direct", TypeDirect},
		{"amq.fanout", TypeFanout},
		{"amq.topic", TypeTopic},
		{"amq.headers", TypeHeaders},
		{"amq.match", TypeHeaders},
	} {
		vh.exchanges[d.name] = newExchange(vh, ExchangeSpec{Name: d.name, Type: d.kind, Durable: true})
	}
	return vh
}

// Name is the vhost's name.
func (vh *VHost) Name() string { return vh.name }

// connect makes a Conn of vh; Router.Connect is the way in.
func (vh *VHost) connect(user string, info ConnInfo) *Conn {
	return &Conn{vh: vh, user: user, info: info, connectedAt: time.Now(), channels: map[*Channel]struct{}{}, exclusive: map[*Queue]struct{}{}}
}

// randomName returns prefix plus 22 URL-safe random characters, the shape
// of RabbitMQ's server-generated names.
func randomName(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func reservedName(name string) bool { return strings.HasPrefix(name, "amq.") }
