package mgmt

// /metrics: Prometheus text format from prometheus/client_golang, with
// RabbitMQ's metric names (rabbitmq_prometheus plugin) where Warren has
// the same quantity, and warren_* for the HTTP and WebSocket fronts.
// Broker values are read from the core at scrape time (a collector, no
// background goroutine); per-queue series carry the labels vhost and
// queue, as RabbitMQ's per-object metrics. In a cluster each node's
// /metrics is that node's view, as RabbitMQ's per-node endpoint: the
// per-queue series (and rabbitmq_queues) cover only the queues this node
// dispatches (their home), so summing over the nodes counts each queue
// once and a scrape never asks another node; warren_cluster_* say what
// this node sees of the cluster and its node link.

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the gateway's Prometheus registry and the instruments of
// the HTTP and WebSocket fronts. Other gateway code reaches it with
// s.metrics(): OpenSession counts WebSocket (or SSE, long-poll) sessions,
// and Registry takes further collectors.
type Metrics struct {
	reg          *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	sessions     *prometheus.GaugeVec
	sessionsOpen *prometheus.CounterVec
	wsFrames     *prometheus.CounterVec

	// byRoute caches the request series of each (route, method, code),
	// so that a request costs one map lookup instead of hashing its
	// label values: routeKey -> *routeSeries.
	byRoute sync.Map
}

type routeKey struct {
	route, method string
	code          int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// series returns the request counter and duration histogram of a route.
func (m *Metrics) series(route, method string, code int) *routeSeries {
	k := routeKey{route, method, code}
	if rs, ok := m.byRoute.Load(k); ok {
		return rs.(*routeSeries)
	}
	rs := &routeSeries{
		requests: m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)),
		duration: m.httpDuration.WithLabelValues(route, method),
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions, http.MethodPatch:
	default:
		return rs // a client's own method name: not worth remembering
	}
	v, _ := m.byRoute.LoadOrStore(k, rs)
	return v.(*routeSeries)
}

// metrics returns the server's metrics (made on first use).
func (s *Server) metrics() *Metrics {
	if m := s.metricsSt.Load(); m != nil {
		return m
	}
	s.metricsSt.CompareAndSwap(nil, newMetrics(s))
	return s.metricsSt.Load()
}

func newMetrics(s *Server) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warren_http_request_duration_seconds", Help: "Time to answer HTTP requests (WebSocket upgrades excluded), by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warren_sessions", Help: "Open streaming sessions of the HTTP front, by kind (websocket, sse, ...).",
		}, []string{"front"}),
		sessionsOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_sessions_opened_total", Help: "Streaming sessions opened since start, by kind.",
		}, []string{"front"}),
		wsFrames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_websocket_frames_total", Help: "WebSocket frames, by direction (in, out).",
		}, []string{"direction"}),
	}
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.sessions, m.sessionsOpen, m.wsFrames,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.router != nil {
		m.reg.MustRegister(&mgBrokerCollector{s: s})
	}
	return m
}

// Registry takes further collectors of other gateway code.
func (m *Metrics) Registry() prometheus.Registerer { return m.reg }

// OpenSession counts a streaming session of kind front ("websocket",
// "sse", ...) and returns the function to call when it ends.
func (m *Metrics) OpenSession(front string) (closed func()) {
	m.sessions.WithLabelValues(front).Inc()
	m.sessionsOpen.WithLabelValues(front).Inc()
	var once sync.Once
	return func() { once.Do(func() { m.sessions.WithLabelValues(front).Dec() }) }
}

// WebSocketFrame counts one frame received ("in") or sent ("out").
func (m *Metrics) WebSocketFrame(direction string) { m.wsFrames.WithLabelValues(direction).Inc() }

// metricsRoutes registers /metrics and the middleware that times every
// request.
func (s *Server) metricsRoutes() {
	m := s.metrics()
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil, Registry: m.reg})
	s.echo.GET("/metrics", echo.WrapHandler(h))
	s.echo.Use(m.middleware)
}

// middleware counts and times requests by route pattern (never the raw
// path, which would make a series per queue name).
func (m *Metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		req := c.Request()
		code := c.Response().Status
		if err != nil {
			if he, ok := coreError(err).(*echo.HTTPError); ok {
				code = he.Code
			}
		}
		upgrade := strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
		if upgrade && err == nil {
			code = http.StatusSwitchingProtocols
		}
		rs := m.series(route, req.Method, code)
		rs.requests.Inc()
		if !upgrade && !strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
			rs.duration.Observe(time.Since(start).Seconds())
		}
		return err
	}
}

// mgBrokerCollector reads the core's state at scrape time.
type mgBrokerCollector struct{ s *Server }

var (
	descConnections = prometheus.NewDesc("rabbitmq_connections", "Connections currently open (every front).", nil, nil)
	descChannels    = prometheus.NewDesc("rabbitmq_channels", "Channels currently open.", nil, nil)
	descConsumers   = prometheus.NewDesc("rabbitmq_consumers", "Consumers currently connected.", nil, nil)
	descQueues      = prometheus.NewDesc("rabbitmq_queues", "Queues available.", nil, nil)
	descVHosts      = prometheus.NewDesc("warren_vhosts", "Virtual hosts.", nil, nil)
	descQReady      = prometheus.NewDesc("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers.", []string{"vhost", "queue"}, nil)
	descQUnacked    = prometheus.NewDesc("rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged.", []string{"vhost", "queue"}, nil)
	descQMessages   = prometheus.NewDesc("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages.", []string{"vhost", "queue"}, nil)
	descQBytes      = prometheus.NewDesc("rabbitmq_queue_messages_ready_bytes", "Size in bytes of ready messages.", []string{"vhost", "queue"}, nil)
	descQConsumers  = prometheus.NewDesc("rabbitmq_queue_consumers", "Consumers on a queue.", []string{"vhost", "queue"}, nil)
	descQPublished  = prometheus.NewDesc("rabbitmq_queue_messages_published_total", "Messages published into a queue.", []string{"vhost", "queue"}, nil)
	descQDelivered  = prometheus.NewDesc("warren_queue_messages_delivered_total", "Messages delivered from a queue to consumers and gets.", []string{"vhost", "queue"}, nil)
	descQAcked      = prometheus.NewDesc("warren_queue_messages_acknowledged_total", "Messages acknowledged on a queue.", []string{"vhost", "queue"}, nil)
	descRSS         = prometheus.NewDesc("rabbitmq_process_resident_memory_bytes", "Resident memory of the Warren process.", nil, nil)
	descFDs         = prometheus.NewDesc("rabbitmq_process_open_fds", "Open file descriptors.", nil, nil)
	descMaxFDs      = prometheus.NewDesc("rabbitmq_process_max_fds", "Open file descriptor limit.", nil, nil)
	descUptime      = prometheus.NewDesc("rabbitmq_erlang_uptime_seconds", "Seconds since the node started (the Go process for Warren).", nil, nil)
	descIdentity    = prometheus.NewDesc("rabbitmq_identity_info", "Node and cluster names, for joining in dashboards.", []string{"rabbitmq_node", "rabbitmq_cluster", "rabbitmq_cluster_permanent_id"}, nil)
	descBuild       = prometheus.NewDesc("rabbitmq_build_info", "Version information.", []string{"rabbitmq_version", "product_name", "product_version", "go_version"}, nil)

	descNodes         = prometheus.NewDesc("warren_cluster_nodes", "Nodes of the cluster as this node sees them, by state (running, stopped); 1 running on a single node.", []string{"state"}, nil)
	descQueuesHeld    = prometheus.NewDesc("warren_cluster_queues", "Queues this node holds, by role: home (dispatched here; the queues of rabbitmq_queue_*) or copy (dispatched by another node).", []string{"role"}, nil)
	descLinkSent      = prometheus.NewDesc("warren_link_forwards_sent_total", "Publishes forwarded to the home node of their queue.", nil, nil)
	descLinkAnswered  = prometheus.NewDesc("warren_link_forwards_answered_total", "Forwards the home node took (stored, or refused by a full queue).", nil, nil)
	descLinkFailed    = prometheus.NewDesc("warren_link_forwards_failed_total", "Forwards nacked: an error, no answer, or no home node within the retry time.", nil, nil)
	descLinkServed    = prometheus.NewDesc("warren_link_forwards_served_total", "Forwards of other nodes' publishers received for queues homed here.", nil, nil)
	descLinkConsumers = prometheus.NewDesc("warren_link_remote_consumers", "Consumers of queues homed here that serve clients of other nodes.", nil, nil)
	descDeclSent      = prometheus.NewDesc("warren_link_declares_sent_total", "Queue declares of this node's clients placed on another node (queue placement).", nil, nil)
	descDeclServed    = prometheus.NewDesc("warren_link_declares_served_total", "Queue declares of other nodes' clients placed on this node.", nil, nil)
)

// mgGlobalCounters maps RabbitMQ's global counter names to the core's.
var mgGlobalCounters = []struct {
	name, help string
	get        func(s *Server) uint64
}{
	{"rabbitmq_global_messages_received_total", "Messages received from publishers.", func(s *Server) uint64 { return s.router.Stats().Published.Load() }},
	{"rabbitmq_global_messages_routed_total", "Messages routed to at least one queue.", func(s *Server) uint64 { return s.router.Stats().Routed.Load() }},
	{"rabbitmq_global_messages_unroutable_dropped_total", "Unroutable messages dropped.", func(s *Server) uint64 { return s.router.Stats().UnroutableDropped.Load() }},
	{"rabbitmq_global_messages_unroutable_returned_total", "Unroutable messages returned to publishers.", func(s *Server) uint64 { return s.router.Stats().UnroutableReturned.Load() }},
	{"rabbitmq_global_messages_delivered_total", "Messages delivered to consumers and gets.", func(s *Server) uint64 { return s.router.Stats().Delivered.Load() }},
	{"rabbitmq_global_messages_delivered_consume_auto_ack_total", "Messages delivered to consumers in automatic acknowledgement mode.", func(s *Server) uint64 { return s.router.Stats().DeliveredNoAck.Load() }},
	{"rabbitmq_global_messages_redelivered_total", "Messages redelivered.", func(s *Server) uint64 { return s.router.Stats().Redelivered.Load() }},
	{"rabbitmq_global_messages_acknowledged_total", "Messages acknowledged by consumers.", func(s *Server) uint64 { return s.router.Stats().Acked.Load() }},
	{"rabbitmq_global_messages_confirmed_total", "Messages confirmed to publishers.", func(s *Server) uint64 { return s.router.Stats().Confirmed.Load() }},
	{"warren_messages_dead_lettered_total", "Messages dead-lettered (all reasons).", func(s *Server) uint64 { return s.router.Stats().DeadLettered.Load() }},
	{"warren_messages_expired_total", "Messages that expired in queues.", func(s *Server) uint64 { return s.router.Stats().Expired.Load() }},
}

var mgGlobalDescs = func() []*prometheus.Desc {
	out := make([]*prometheus.Desc, len(mgGlobalCounters))
	for i, g := range mgGlobalCounters {
		out[i] = prometheus.NewDesc(g.name, g.help, nil, nil)
	}
	return out
}()

func (b *mgBrokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descChannels, descConsumers, descQueues, descVHosts, descQReady, descQUnacked,
		descQMessages, descQBytes, descQConsumers, descQPublished, descQDelivered, descQAcked, descRSS, descFDs, descMaxFDs, descUptime,
		descIdentity, descBuild, descNodes, descQueuesHeld, descLinkSent, descLinkAnswered, descLinkFailed, descLinkServed, descLinkConsumers, descDeclSent, descDeclServed} {
		ch <- d
	}
	for _, d := range mgGlobalDescs {
		ch <- d
	}
}

func (b *mgBrokerCollector) Collect(ch chan<- prometheus.Metric) {
	r := b.s.router
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descConnections, float64(len(r.Connections())))
	gauge(descChannels, float64(len(r.Channels())))
	gauge(descConsumers, float64(len(r.Consumers())))
	names := r.VHostNames()
	gauge(descVHosts, float64(len(names)))
	queues := 0
	for _, name := range names {
		vh, err := r.VHost(name)
		if err != nil {
			continue
		}
		for _, q := range vh.HomedQueues() {
			queues++
			gauge(descQReady, float64(q.Ready), q.VHost, q.Name)
			gauge(descQUnacked, float64(q.Unacked), q.VHost, q.Name)
			gauge(descQMessages, float64(q.Messages()), q.VHost, q.Name)
			gauge(descQBytes, float64(q.ReadyBytes), q.VHost, q.Name)
			gauge(descQConsumers, float64(q.Consumers), q.VHost, q.Name)
			counter(descQPublished, float64(q.Published), q.VHost, q.Name)
			counter(descQDelivered, float64(q.Delivered), q.VHost, q.Name)
			counter(descQAcked, float64(q.Acked), q.VHost, q.Name)
		}
	}
	gauge(descQueues, float64(queues))
	for i, g := range mgGlobalCounters {
		counter(mgGlobalDescs[i], float64(g.get(b.s)))
	}
	st := b.s.router.LocalStats()
	gauge(descRSS, float64(st.MemUsed))
	gauge(descFDs, float64(st.FDUsed))
	gauge(descMaxFDs, float64(st.FDTotal))
	node, cluster := "warren", "warren"
	started := time.Now()
	if m := b.s.mgmtState.Load(); m != nil {
		node, cluster, started = m.node, m.clusterName(), m.started
	}
	gauge(descUptime, time.Since(started).Seconds())
	gauge(descIdentity, 1, node, cluster, cluster)
	gauge(descBuild, 1, mgmtRabbitVersion, mgmtProduct, mgmtProductVersion, runtime.Version())

	running, stopped := 0, 0
	for _, n := range r.Nodes() {
		if n.Running {
			running++
		} else {
			stopped++
		}
	}
	gauge(descNodes, float64(running), "running")
	gauge(descNodes, float64(stopped), "stopped")
	homed, copies := r.QueueCount()
	gauge(descQueuesHeld, float64(homed), "home")
	gauge(descQueuesHeld, float64(copies), "copy")
	ls := r.LinkStats()
	counter(descLinkSent, float64(ls.ForwardsSent))
	counter(descLinkAnswered, float64(ls.ForwardsAnswered))
	counter(descLinkFailed, float64(ls.ForwardsFailed))
	counter(descLinkServed, float64(ls.ForwardsServed))
	gauge(descLinkConsumers, float64(ls.RemoteConsumers))
	counter(descDeclSent, float64(ls.DeclaresSent))
	counter(descDeclServed, float64(ls.DeclaresServed))
}
