package mgmt

import (
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// mgHostPort splits "1.2.3.4:5" for peer_host/peer_port.
func mgHostPort(addr string) (string, any) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return h, nil
	}
	return h, n
}

func (m *mgmt) connOut(cs mapping.ConnStats) map[string]any {
	peerHost, peerPort := mgHostPort(cs.Peer)
	host, port := mgHostPort(cs.Local)
	props := map[string]any{}
	if cs.ClientProperties != nil {
		props = msgcodec.TableToJSON(cs.ClientProperties)
	}
	mech := cs.AuthMechanism
	if mech == "" {
		mech = "PLAIN"
	}
	out := map[string]any{
		"name": cs.Name, "node": m.node, "type": "network", "state": "running", "protocol": cs.Protocol,
		"user": cs.User, "user_who_performed_action": cs.User, "vhost": cs.VHost,
		"host": host, "port": port, "peer_host": peerHost, "peer_port": peerPort,
		"channels": cs.Channels, "connected_at": cs.ConnectedAt.UnixMilli(),
		"client_properties": props, "auth_mechanism": mech,
	}
	for k, v := range mgTLSFields(cs.TLS) {
		out[k] = v
	}
	return out
}

// visibleConnections: all for monitoring and administrators, the user's
// own for others.
func (m *mgmt) visibleConnections(u *mapping.UserInfo) []mapping.ConnStats {
	var out []mapping.ConnStats
	for _, cs := range m.s.router.Connections() {
		if mgSeesAll(u) || cs.User == u.Name {
			out = append(out, cs)
		}
	}
	return out
}

func (m *mgmt) visibleChannels(u *mapping.UserInfo) []mapping.ChannelStats {
	var out []mapping.ChannelStats
	for _, ch := range m.s.router.Channels() {
		if mgSeesAll(u) || ch.User == u.Name {
			out = append(out, ch)
		}
	}
	return out
}

func (m *mgmt) visibleConsumers(u *mapping.UserInfo) []mapping.ConsumerStats {
	users := map[string]string{}
	for _, cs := range m.s.router.Connections() {
		users[cs.Name] = cs.User
	}
	var out []mapping.ConsumerStats
	for _, k := range m.s.router.Consumers() {
		if mgSeesAll(u) || users[k.Connection] == u.Name {
			out = append(out, k)
		}
	}
	return out
}

func (m *mgmt) connList(c echo.Context, vhost string) error {
	out := []map[string]any{}
	for _, cs := range m.visibleConnections(mgUser(c)) {
		if vhost == "" || cs.VHost == vhost {
			out = append(out, m.connOut(cs))
		}
	}
	return mgList(c, out)
}

func (m *mgmt) listConnections(c echo.Context) error { return m.connList(c, "") }

func (m *mgmt) vhostConnections(c echo.Context) error {
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	if _, err := m.vhost(c, vhost); err != nil {
		return err
	}
	return m.connList(c, vhost)
}

func (m *mgmt) findConnection(c echo.Context) (mapping.ConnStats, error) {
	name, err := mgParam(c, "name")
	if err != nil {
		return mapping.ConnStats{}, err
	}
	for _, cs := range m.visibleConnections(mgUser(c)) {
		if cs.Name == name {
			return cs, nil
		}
	}
	return mapping.ConnStats{}, apiError(http.StatusNotFound, fmt.Sprintf("no connection '%s'", name))
}

func (m *mgmt) getConnection(c echo.Context) error {
	cs, err := m.findConnection(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m.connOut(cs))
}

// closeConnection closes a connection; the X-Reason header is passed on
// to the client (AMQP connection.close 320 CONNECTION_FORCED). Users who
// are not administrators may close only their own.
func (m *mgmt) closeConnection(c echo.Context) error {
	cs, err := m.findConnection(c)
	if err != nil {
		return err
	}
	u := mgUser(c)
	if !mgIsAdmin(u) && cs.User != u.Name {
		return apiError(http.StatusUnauthorized, "Not administrator user: only administrators may close other users' connections")
	}
	reason := c.Request().Header.Get("X-Reason")
	if reason == "" {
		reason = "Closed via management plugin"
	}
	if err := m.s.router.CloseConnection(cs.Name, reason); err != nil {
		return coreError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func mgChannelName(ch mapping.ChannelStats) string {
	return fmt.Sprintf("%s (%d)", ch.Connection, ch.Number)
}

func (m *mgmt) channelOut(ch mapping.ChannelStats, conns map[string]mapping.ConnStats) map[string]any {
	cs := conns[ch.Connection]
	peerHost, peerPort := mgHostPort(cs.Peer)
	return map[string]any{
		"name": mgChannelName(ch), "number": ch.Number, "node": m.node, "user": ch.User, "vhost": ch.VHost,
		"user_who_performed_action": ch.User,
		"connection_details":        map[string]any{"name": ch.Connection, "peer_host": peerHost, "peer_port": peerPort},
		"prefetch_count":            ch.Prefetch, "global_prefetch_count": ch.GlobalPrefetch,
		"messages_unacknowledged": ch.Unacked, "messages_unconfirmed": 0, "messages_uncommitted": 0,
		"acks_uncommitted": 0, "consumer_count": ch.Consumers, "confirm": ch.Confirm, "transactional": false,
		"state": "running",
	}
}

func (m *mgmt) connMap() map[string]mapping.ConnStats {
	out := map[string]mapping.ConnStats{}
	for _, cs := range m.s.router.Connections() {
		out[cs.Name] = cs
	}
	return out
}

func (m *mgmt) chanList(c echo.Context, keep func(mapping.ChannelStats) bool) error {
	conns := m.connMap()
	out := []map[string]any{}
	for _, ch := range m.visibleChannels(mgUser(c)) {
		if keep(ch) {
			out = append(out, m.channelOut(ch, conns))
		}
	}
	return mgList(c, out)
}

func (m *mgmt) listChannels(c echo.Context) error {
	return m.chanList(c, func(mapping.ChannelStats) bool { return true })
}

func (m *mgmt) vhostChannels(c echo.Context) error {
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	if _, err := m.vhost(c, vhost); err != nil {
		return err
	}
	return m.chanList(c, func(ch mapping.ChannelStats) bool { return ch.VHost == vhost })
}

func (m *mgmt) connectionChannels(c echo.Context) error {
	cs, err := m.findConnection(c)
	if err != nil {
		return err
	}
	return m.chanList(c, func(ch mapping.ChannelStats) bool { return ch.Connection == cs.Name })
}

func (m *mgmt) getChannel(c echo.Context) error {
	name, err := mgParam(c, "channel")
	if err != nil {
		return err
	}
	conns := m.connMap()
	u := mgUser(c)
	for _, ch := range m.visibleChannels(u) {
		if mgChannelName(ch) == name {
			out := m.channelOut(ch, conns)
			cds := []map[string]any{}
			for _, k := range m.visibleConsumers(u) {
				if k.Connection == ch.Connection && k.Channel == ch.Number {
					cds = append(cds, mgConsumerOut(k))
				}
			}
			out["consumer_details"] = cds
			return c.JSON(http.StatusOK, out)
		}
	}
	return apiError(http.StatusNotFound, fmt.Sprintf("no channel '%s'", name))
}

func mgConsumerOut(k mapping.ConsumerStats) map[string]any {
	args := map[string]any{}
	if k.Priority != 0 {
		args["x-priority"] = k.Priority
	}
	return map[string]any{
		"consumer_tag": k.Tag,
		"queue":        map[string]any{"name": k.Queue, "vhost": k.VHost},
		"channel_details": map[string]any{
			"name": fmt.Sprintf("%s (%d)", k.Connection, k.Channel), "number": k.Channel, "connection_name": k.Connection,
		},
		"ack_required": k.AckRequired, "exclusive": k.Exclusive, "prefetch_count": k.Prefetch,
		"arguments": args, "active": true, "activity_status": "up",
	}
}

func (m *mgmt) listConsumers(c echo.Context) error {
	vhs, err := m.vhostsParam(c)
	if err != nil {
		return err
	}
	in := map[string]bool{}
	for _, vh := range vhs {
		in[vh.Name()] = true
	}
	out := []map[string]any{}
	for _, k := range m.visibleConsumers(mgUser(c)) {
		if in[k.VHost] {
			out = append(out, mgConsumerOut(k))
		}
	}
	return mgList(c, out)
}
