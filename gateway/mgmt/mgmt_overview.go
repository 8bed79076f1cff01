package mgmt

import (
	"context"
	"net/http"
	"runtime"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

var mgExchangeTypes = []map[string]any{
	{"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
	{"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
	{"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
	{"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
}

// globalStats is RabbitMQ's message_stats object for the whole broker,
// with rates.
func (m *mgmt) globalStats() map[string]any {
	st := m.s.router.Stats()
	names := []string{"publish", "deliver_get", "deliver_no_ack", "redeliver", "ack", "confirm", "return_unroutable", "drop_unroutable"}
	vals := []float64{
		float64(st.Published.Load()), float64(st.Delivered.Load()), float64(st.DeliveredNoAck.Load()), float64(st.Redelivered.Load()),
		float64(st.Acked.Load()), float64(st.Confirmed.Load()), float64(st.UnroutableReturned.Load()), float64(st.UnroutableDropped.Load()),
	}
	rates := m.rates.rates("global", vals...)
	out := map[string]any{}
	for i, n := range names {
		out[n] = int64(vals[i])
		out[n+"_details"] = rateDetails{rates[i]}
	}
	return out
}

func (m *mgmt) overview(c echo.Context) error {
	u := mgUser(c)
	vhs, _ := m.vhostsParam(c)
	var msgs, ready, unacked, queues, exchanges int
	for _, vh := range vhs {
		for _, q := range vh.Queues() {
			queues++
			ready += q.Ready
			unacked += q.Unacked
		}
		exchanges += len(vh.Exchanges())
	}
	msgs = ready + unacked
	lr := m.rates.rates("totals", float64(msgs), float64(ready), float64(unacked))
	conns, chans, cons := m.visibleConnections(u), m.visibleChannels(u), m.visibleConsumers(u)
	return c.JSON(http.StatusOK, map[string]any{
		"management_version":  mgmtRabbitVersion,
		"rabbitmq_version":    mgmtRabbitVersion,
		"product_name":        mgmtProduct,
		"product_version":     mgmtProductVersion,
		"cluster_name":        m.clusterName(),
		"node":                m.node,
		"erlang_version":      runtime.Version(),
		"erlang_full_version": runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		"rates_mode":          "basic",
		"disable_stats":       false,
		"enable_queue_totals": true,
		"exchange_types":      mgExchangeTypes,
		"message_stats":       m.globalStats(),
		"queue_totals": map[string]any{
			"messages": msgs, "messages_details": rateDetails{lr[0]},
			"messages_ready": ready, "messages_ready_details": rateDetails{lr[1]},
			"messages_unacknowledged": unacked, "messages_unacknowledged_details": rateDetails{lr[2]},
		},
		"object_totals": map[string]any{
			"connections": len(conns), "channels": len(chans), "consumers": len(cons),
			"exchanges": exchanges, "queues": queues,
		},
		"statistics_db_event_queue": 0,
		"listeners":                 []any{},
		"contexts":                  []map[string]any{{"node": m.node, "description": "Warren management API", "path": "/"}},
	})
}

// clusterName is the NATS cluster's name in a cluster; a single node
// names itself, as RabbitMQ names a cluster after its first node.
func (m *mgmt) clusterName() string {
	if st := m.s.router.ClusterStatus(); st.Clustered {
		return st.Name
	}
	return m.node
}

func (m *mgmt) getClusterName(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"name": m.clusterName()})
}

func (m *mgmt) extensions(c echo.Context) error { return c.JSON(http.StatusOK, []any{}) }

// nodeInfo is one node as /api/nodes shows it: RabbitMQ's fields as far
// as Warren knows them, and its cluster health as this node sees it. A
// node that is not running shows its name, type and health only, as
// RabbitMQ shows a stopped node.
func (m *mgmt) nodeInfo(n mapping.NodeInfo) map[string]any {
	name := n.Name
	if n.Self {
		name = m.node
	}
	out := map[string]any{
		"name":          name,
		"type":          "disc",
		"running":       n.Running,
		"being_drained": false,
		"partitions":    []string{},
	}
	if m.s.router.NodeName() != "" {
		out["route_connected"] = n.RouteConnected
		out["meta_leader"] = n.MetaLeader
		out["meta_current"] = n.MetaCurrent
		out["meta_offline"] = n.MetaOffline
		out["meta_lag"] = n.MetaLag
		if !n.Self && n.Stats != nil {
			out["last_seen"] = n.LastSeen.Milliseconds()
		}
		if n.Self {
			out["routes_refused"] = n.RoutesRefused
			out["last_route_refused"] = n.LastRefused
			out["cut_off"] = n.CutOff != ""
			if n.CutOff != "" {
				out["cut_off_reason"] = n.CutOff
			}
		}
	}
	if !n.Running || n.Stats == nil {
		return out
	}
	st := n.Stats
	for k, v := range map[string]any{
		"mem_used":        st.MemUsed,
		"mem_limit":       max(st.MemLimit, 0),
		"mem_alarm":       st.MemAlarm,
		"disk_free":       st.DiskFree,
		"disk_free_limit": max(st.DiskFreeLimit, 0),
		"disk_free_alarm": st.DiskAlarm,
		"fd_used":         st.FDUsed,
		"fd_total":        st.FDTotal,
		"sockets_used":    st.Sockets,
		"proc_used":       st.Goroutines,
		"processors":      st.Processors,
		"uptime":          (st.Uptime + n.LastSeen).Milliseconds(),
		"os_pid":          strconv.Itoa(st.PID),
		"run_queue":       0,
		"rates_mode":      "basic",
		"exchange_types":  mgExchangeTypes,
		"product_name":    mgmtProduct,
		"product_version": mgmtProductVersion,
		"go_version":      st.GoVersion,
	} {
		out[k] = v
	}
	return out
}

func (m *mgmt) nodes(c echo.Context) error {
	if err := mgRequireMonitor(c); err != nil {
		return err
	}
	var out []map[string]any
	for _, n := range m.s.router.Nodes() {
		out = append(out, m.nodeInfo(n))
	}
	return mgList(c, out)
}

func (m *mgmt) node1(c echo.Context) error {
	if err := mgRequireMonitor(c); err != nil {
		return err
	}
	name, err := mgParam(c, "node")
	if err != nil {
		return err
	}
	for _, n := range m.s.router.Nodes() {
		if n.Name == name || n.Self && name == m.node {
			return c.JSON(http.StatusOK, m.nodeInfo(n))
		}
	}
	return apiError(http.StatusNotFound, "no node '"+name+"' (this node is '"+m.node+"')")
}

func (m *mgmt) whoami(c echo.Context) error {
	u := mgUser(c)
	return c.JSON(http.StatusOK, map[string]any{"name": u.Name, "tags": mgTags(u.Tags)})
}

func mgTags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

// healthOK answers the health checks: they fail while the core is
// closing or a resource alarm (memory, disk) is active.
func (m *mgmt) healthOK(c echo.Context) error {
	if err := m.s.router.Healthy(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "failed", "reason": err.Error()})
	}
	if blocked, reason := m.s.router.Blocked(); blocked {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "failed", "reason": "resource alarm in effect: " + reason, "alarms": m.s.router.Alarms()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// aliveness declares the queue aliveness-test in the vhost, publishes a
// message to it and gets it back, as RabbitMQ does.
func (m *mgmt) aliveness(c echo.Context) error {
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	if _, err := m.vhost(c, vhost); err != nil {
		return err
	}
	const q = "aliveness-test"
	err = m.withChannel(c, vhost, func(ch *mapping.Channel) error {
		if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: q}, false); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), mgmtTimeout)
		defer cancel()
		if _, err := publishAndWait(ch, &mapping.Message{RoutingKey: q, Body: []byte("test_message")}, ctx, ctx); err != nil {
			return err
		}
		for {
			d, _, ok, err := ch.Get(q, true)
			if err != nil {
				return err
			}
			if !ok {
				return apiError(http.StatusServiceUnavailable, "the test message did not come back")
			}
			if string(d.Message.Body) == "test_message" {
				return nil
			}
		}
	})
	if err != nil {
		if he, ok := err.(*echo.HTTPError); ok && he.Code == http.StatusServiceUnavailable {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "failed", "reason": he.Message})
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
