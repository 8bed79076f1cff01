package mapping

import (
	"crypto/tls"
	"maps"
	"slices"
	"sort"
	"time"
)

// ConnInfo describes a client connection for the management API. Fronts
// fill it in when they connect.
type ConnInfo struct {
	Name             string // unique, e.g. "127.0.0.1:50312 -> 127.0.0.1:5672"
	Protocol         string // "AMQP 0-9-1", "HTTP", "WebSocket", "STOMP 1.2"
	Peer             string
	Local            string
	ClientProperties Table
	// TLS is the connection's TLS state; nil for a plain connection.
	TLS *tls.ConnectionState
	// AuthMechanism is the SASL mechanism the client logged in with
	// ("" means PLAIN).
	AuthMechanism string
	// Close asks the front to close the connection (management API,
	// vhost deletion); it must not block.
	Close func(reason string)
	// Hidden connections (the gateway's own) are not listed.
	Hidden bool
}

// ConnStats is a connection as the management API lists it.
type ConnStats struct {
	ConnInfo
	User        string
	VHost       string
	ConnectedAt time.Time
	Channels    int
}

// ChannelStats is a channel as the management API lists it.
type ChannelStats struct {
	Connection     string
	Number         int
	User           string
	VHost          string
	Prefetch       int
	GlobalPrefetch int
	Unacked        int
	Consumers      int
	Confirm        bool
}

// ConsumerStats is a consumer as the management API lists it.
type ConsumerStats struct {
	Tag         string
	Queue       string
	VHost       string
	Connection  string
	Channel     int
	AckRequired bool
	Exclusive   bool
	Prefetch    int
	Priority    int64
}

// Connect is vhost admission for every front: the vhost must exist, the
// user (already authenticated by the front) needs access to it, and a
// client connection (not Hidden: AMQP, WebSocket, STOMP) must fit under
// the vhost's connection limit. The limit is checked and the connection
// registered under one lock, so concurrent connects cannot overshoot it.
// Exclusive queues belong to the Conn and die with it.
func (r *Router) Connect(user, vhost string, info ConnInfo) (*Conn, error) {
	vh, err := r.VHost(vhost)
	if err != nil {
		return nil, err
	}
	if err := r.CheckVHostAccess(user, vhost); err != nil {
		return nil, err
	}
	c := vh.connect(user, info)
	if info.Hidden {
		return c, nil
	}
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if max := r.cfg.Limits.MaxConnections; max > 0 {
		n := 0
		for o := range r.conns {
			if o.vh.name == vhost {
				n++
			}
		}
		if n >= max {
			return nil, errorf(KindNotAllowed, "access to vhost '%s' refused for user '%s': connection limit (%d) is reached", vhost, user, max)
		}
	}
	r.conns[c] = struct{}{}
	return c, nil
}

func (r *Router) unregister(c *Conn) {
	r.connMu.Lock()
	delete(r.conns, c)
	r.connMu.Unlock()
}

func (r *Router) connections() []*Conn {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	out := make([]*Conn, 0, len(r.conns))
	for c := range r.conns {
		out = append(out, c)
	}
	return out
}

func (c *Conn) forceClose(reason string) {
	if c.info.Close != nil {
		c.info.Close(reason)
	}
}

// Connections lists the open client connections, sorted by name.
func (r *Router) Connections() []ConnStats {
	var out []ConnStats
	for _, c := range r.connections() {
		c.mu.Lock()
		n := len(c.channels)
		c.mu.Unlock()
		out = append(out, ConnStats{ConnInfo: c.info, User: c.user, VHost: c.vh.name, ConnectedAt: c.connectedAt, Channels: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CloseConnection asks the front of the named connection to close it.
func (r *Router) CloseConnection(name, reason string) error {
	for _, c := range r.connections() {
		if c.info.Name == name {
			if c.info.Close == nil {
				return errorf(KindNotImplemented, "connection '%s' cannot be closed from here", name)
			}
			c.forceClose(reason)
			return nil
		}
	}
	return errorf(KindNotFound, "no connection '%s'", name)
}

// channelList is a snapshot of c's open channels (Conn.mu is released
// before a caller takes a Channel.mu).
func (c *Conn) channelList() []*Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Keys(c.channels))
}

// Channels lists the open channels of every listed connection.
func (r *Router) Channels() []ChannelStats {
	var out []ChannelStats
	for _, c := range r.connections() {
		for _, ch := range c.channelList() {
			ch.mu.Lock()
			out = append(out, ChannelStats{
				Connection: c.info.Name, Number: ch.number, User: c.user, VHost: c.vh.name,
				Prefetch: ch.prefetch, GlobalPrefetch: int(ch.globalPrefetch.Load()),
				Unacked: int(ch.unackedN.Load()), Consumers: len(ch.consumers), Confirm: ch.confirm,
			})
			ch.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connection != out[j].Connection {
			return out[i].Connection < out[j].Connection
		}
		return out[i].Number < out[j].Number
	})
	return out
}

// Consumers lists every consumer of listed connections.
func (r *Router) Consumers() []ConsumerStats {
	var out []ConsumerStats
	for _, c := range r.connections() {
		for _, ch := range c.channelList() {
			ch.mu.Lock()
			for _, k := range ch.consumers {
				out = append(out, ConsumerStats{
					Tag: k.tag, Queue: k.q.name, VHost: c.vh.name, Connection: c.info.Name, Channel: ch.number,
					AckRequired: !k.noAck, Exclusive: k.exclusive, Prefetch: k.prefetch, Priority: k.priority,
				})
			}
			ch.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}
