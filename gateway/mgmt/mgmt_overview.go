package mgmt

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

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
		"cluster_name":        m.node,
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

func (m *mgmt) clusterName(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"name": m.node})
}

func (m *mgmt) extensions(c echo.Context) error { return c.JSON(http.StatusOK, []any{}) }

// nodeInfo is the one node of this broker as /api/nodes shows it.
func (m *mgmt) nodeInfo() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mem := procRSS()
	if mem == 0 {
		mem = int64(ms.Sys)
	}
	fds, maxFDs := procFDs()
	return map[string]any{
		"name":            m.node,
		"type":            "disc",
		"running":         true,
		"being_drained":   false,
		"mem_used":        mem,
		"mem_limit":       0,
		"mem_alarm":       false,
		"disk_free_alarm": false,
		"fd_used":         fds,
		"fd_total":        maxFDs,
		"sockets_used":    len(m.s.router.Connections()),
		"proc_used":       runtime.NumGoroutine(),
		"processors":      runtime.NumCPU(),
		"uptime":          time.Since(m.started).Milliseconds(),
		"os_pid":          strconv.Itoa(os.Getpid()),
		"run_queue":       0,
		"rates_mode":      "basic",
		"exchange_types":  mgExchangeTypes,
		"product_name":    mgmtProduct,
		"product_version": mgmtProductVersion,
		"go_version":      runtime.Version(),
	}
}

func (m *mgmt) nodes(c echo.Context) error {
	if err := mgRequireMonitor(c); err != nil {
		return err
	}
	return mgList(c, []map[string]any{m.nodeInfo()})
}

func (m *mgmt) node1(c echo.Context) error {
	if err := mgRequireMonitor(c); err != nil {
		return err
	}
	name, err := mgParam(c, "node")
	if err != nil {
		return err
	}
	if name != m.node {
		return apiError(http.StatusNotFound, "no node '"+name+"' (this node is '"+m.node+"')")
	}
	return c.JSON(http.StatusOK, m.nodeInfo())
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

// procRSS reads VmRSS from /proc (Linux); 0 elsewhere.
func procRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// procFDs counts /proc/self/fd and reads the soft limit (Linux).
func procFDs() (used, limit int) {
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		used = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
				if len(f) > 0 {
					limit, _ = strconv.Atoi(f[0])
				}
			}
		}
	}
	return used, limit
}
