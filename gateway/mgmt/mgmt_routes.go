package mgmt

// The RabbitMQ-compatible management API under /api/: route table,
// authorisation by user tags, path parameters and the mgList query
// parameters (columns, sort, sort_reverse, pagination) every listing
// accepts. The handlers live in mgmt_*.go by area; docs/management.md
// describes the API for users and openapi/management.json for tools.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/validate"
	"github.com/warrenmq/warren/mapping"
)

// Versions the management API reports. rabbitmq_version is the RabbitMQ
// release whose management API Warren follows, so that tools which
// branch on it pick the right shapes.
const (
	mgmtProduct        = "Warren"
	mgmtProductVersion = "0.1.0"
	mgmtRabbitVersion  = "3.10.8"
)

// mgmtTimeout bounds how long an API call waits for the store (publish
// confirms, aliveness test).
const mgmtTimeout = 10 * time.Second

// mgmt is the management API's state: the rate sampler and the start time.
type mgmt struct {
	s       *Server
	started time.Time
	node    string
	rates   *rateTracker
}

// mgmtRoutes registers /api/... and /metrics (see metrics.go).
func (s *Server) mgmtRoutes() {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	node := "" // a cluster node's configured name
	if s.router != nil {
		node = s.router.NodeName()
	}
	if node == "" {
		node = "warren@" + host
	}
	m := &mgmt{s: s, started: time.Now(), node: node, rates: newRateTracker()}
	s.mgmtState.Store(m)
	s.metricsRoutes()

	api := func(method, path string, h echo.HandlerFunc) {
		s.echo.Add(method, "/api"+path, h, m.auth)
	}
	const G, P, D, U = http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut

	api(G, "/overview", m.overview)
	api(G, "/cluster-name", m.getClusterName)
	api(G, "/nodes", m.nodes)
	api(G, "/nodes/:node", m.node1)
	api(G, "/whoami", m.whoami)
	api(G, "/extensions", m.extensions)

	api(G, "/vhosts", m.listVHosts)
	api(G, "/vhosts/:vhost", m.getVHost)
	api(U, "/vhosts/:vhost", m.putVHost)
	api(D, "/vhosts/:vhost", m.deleteVHost)
	api(G, "/vhosts/:vhost/permissions", m.vhostPermissions)
	api(G, "/vhosts/:vhost/connections", m.vhostConnections)
	api(G, "/vhosts/:vhost/channels", m.vhostChannels)

	api(G, "/users", m.listUsers)
	api(G, "/users/without-permissions", m.usersWithoutPermissions)
	api(P, "/users/bulk-delete", m.bulkDeleteUsers)
	api(G, "/users/:user", m.getUser)
	api(U, "/users/:user", m.putUser)
	api(D, "/users/:user", m.deleteUser)
	api(G, "/users/:user/permissions", m.userPermissions)

	api(G, "/permissions", m.listPermissions)
	api(G, "/permissions/:vhost/:user", m.getPermission)
	api(U, "/permissions/:vhost/:user", m.putPermission)
	api(D, "/permissions/:vhost/:user", m.deletePermission)

	api(G, "/queues", m.listQueues)
	api(G, "/queues/:vhost", m.listQueues)
	api(G, "/queues/:vhost/:name", m.getQueue)
	api(U, "/queues/:vhost/:name", m.putQueue)
	api(D, "/queues/:vhost/:name", m.deleteQueue)
	api(G, "/queues/:vhost/:name/bindings", m.queueBindings)
	api(D, "/queues/:vhost/:name/contents", m.purgeQueue)
	api(P, "/queues/:vhost/:name/get", m.getMessages)

	api(G, "/exchanges", m.listExchanges)
	api(G, "/exchanges/:vhost", m.listExchanges)
	api(G, "/exchanges/:vhost/:name", m.getExchange)
	api(U, "/exchanges/:vhost/:name", m.putExchange)
	api(D, "/exchanges/:vhost/:name", m.deleteExchange)
	api(G, "/exchanges/:vhost/:name/bindings/source", m.exchangeBindingsSource)
	api(G, "/exchanges/:vhost/:name/bindings/destination", m.exchangeBindingsDestination)
	api(P, "/exchanges/:vhost/:name/publish", m.publish)

	api(G, "/bindings", m.listBindings)
	api(G, "/bindings/:vhost", m.listBindings)
	api(G, "/bindings/:vhost/e/:source/q/:destination", m.listBindingsBetween)
	api(P, "/bindings/:vhost/e/:source/q/:destination", m.createBinding)
	api(G, "/bindings/:vhost/e/:source/q/:destination/:props", m.getBinding)
	api(D, "/bindings/:vhost/e/:source/q/:destination/:props", m.deleteBinding)
	api(G, "/bindings/:vhost/e/:source/e/:destination", m.listBindingsBetween)
	api(P, "/bindings/:vhost/e/:source/e/:destination", m.createBinding)
	api(G, "/bindings/:vhost/e/:source/e/:destination/:props", m.getBinding)
	api(D, "/bindings/:vhost/e/:source/e/:destination/:props", m.deleteBinding)

	api(G, "/connections", m.listConnections)
	api(G, "/connections/:name", m.getConnection)
	api(D, "/connections/:name", m.closeConnection)
	api(G, "/connections/:name/channels", m.connectionChannels)
	api(G, "/channels", m.listChannels)
	api(G, "/channels/:channel", m.getChannel)
	api(G, "/consumers", m.listConsumers)
	api(G, "/consumers/:vhost", m.listConsumers)

	api(G, "/definitions", m.exportDefinitions)
	api(P, "/definitions", m.importDefinitions)
	api(G, "/definitions/:vhost", m.exportDefinitions)
	api(P, "/definitions/:vhost", m.importDefinitions)

	api(G, "/health/checks/alarms", m.healthOK)
	api(G, "/health/checks/local-alarms", m.healthOK)
	api(G, "/health/checks/virtual-hosts", m.healthOK)
	api(G, "/aliveness-test/:vhost", m.aliveness)
	m.shovelRoutes(api)
}

// ---------------------------------------------------------------------------
// Authorisation. RabbitMQ's rules: a user needs one of the management tags
// to use the API at all; "monitoring" sees everything; "administrator"
// sees and changes everything; "management" and "policymaker" see the
// vhosts they have permissions on and their own connections. Refusals are
// 401 not_authorised with RabbitMQ's reasons.

const (
	tagAdministrator = "administrator"
	tagMonitoring    = "monitoring"
	tagPolicymaker   = "policymaker"
	tagManagement    = "management"
)

func (m *mgmt) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, err := m.s.authenticate(c)
		if err != nil {
			return err
		}
		if !u.HasTag(tagAdministrator) && !u.HasTag(tagMonitoring) && !u.HasTag(tagPolicymaker) && !u.HasTag(tagManagement) {
			m.s.cfg.Logger.Warn("HTTP access denied", "user", u.Name, "reason", "not a management user")
			return apiError(http.StatusUnauthorized, "Not management user")
		}
		c.Response().Header().Set("Cache-Control", "no-cache")
		return next(c)
	}
}

// mgUser is the authenticated user of an /api/ request.
func mgUser(c echo.Context) *mapping.UserInfo {
	u, _ := c.Get(userKey).(*mapping.UserInfo)
	return u
}

func mgIsAdmin(u *mapping.UserInfo) bool { return u.HasTag(tagAdministrator) }

// mgSeesAll: administrators and monitoring users see every vhost and every
// user's connections.
func mgSeesAll(u *mapping.UserInfo) bool {
	return u.HasTag(tagAdministrator) || u.HasTag(tagMonitoring)
}

func mgRequireAdmin(c echo.Context) error {
	if !mgIsAdmin(mgUser(c)) {
		return apiError(http.StatusUnauthorized, "Not administrator user")
	}
	return nil
}

func mgRequireMonitor(c echo.Context) error {
	if !mgSeesAll(mgUser(c)) {
		return apiError(http.StatusUnauthorized, "Not monitor user")
	}
	return nil
}

// canSeeVHost: may u mgList the objects of vhost?
func (m *mgmt) canSeeVHost(u *mapping.UserInfo, vhost string) bool {
	return mgSeesAll(u) || len(m.s.router.Permissions(vhost, u.Name)) > 0
}

// visibleVHosts lists the vhosts u may see, sorted.
func (m *mgmt) visibleVHosts(u *mapping.UserInfo) []string {
	var out []string
	for _, v := range m.s.router.VHostNames() {
		if m.canSeeVHost(u, v) {
			out = append(out, v)
		}
	}
	return out
}

// vhost looks a vhost up for an /api/ request: 404 when it does not
// exist, 401 when the user may not see it.
func (m *mgmt) vhost(c echo.Context, name string) (*mapping.VHost, error) {
	vh, err := m.s.router.VHost(name)
	if err != nil {
		return nil, apiError(http.StatusNotFound, fmt.Sprintf("no vhost '%s'", name))
	}
	if !m.canSeeVHost(mgUser(c), name) {
		return nil, apiError(http.StatusUnauthorized, "User not authorised to access virtual host")
	}
	return vh, nil
}

// vhostsParam is the vhost of the path when the route has one, else
// every vhost the user may see.
func (m *mgmt) vhostsParam(c echo.Context) ([]*mapping.VHost, error) {
	if mgHasParam(c, "vhost") {
		name, err := mgParam(c, "vhost")
		if err != nil {
			return nil, err
		}
		vh, err := m.vhost(c, name)
		if err != nil {
			return nil, err
		}
		return []*mapping.VHost{vh}, nil
	}
	var out []*mapping.VHost
	for _, name := range m.visibleVHosts(mgUser(c)) {
		if vh, err := m.s.router.VHost(name); err == nil {
			out = append(out, vh)
		}
	}
	return out, nil
}

func mgHasParam(c echo.Context, name string) bool {
	for _, n := range c.ParamNames() {
		if n == name {
			return true
		}
	}
	return false
}

// mgParam is a path parameter, percent-decoded. Echo routes on the raw
// path when the URL contains escapes (so that "%2F", the default vhost,
// stays inside one segment) and then leaves parameters escaped.
func mgParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", apiError(http.StatusBadRequest, fmt.Sprintf("path segment %s is not valid percent-encoding: %v", name, err))
	}
	return u, nil
}

// mgExchangeName maps the API's name of the default exchange to the core's.
func mgExchangeName(name string) string {
	if name == "amq.default" {
		return ""
	}
	return name
}

// ---------------------------------------------------------------------------
// Doing things as the user: a hidden core connection per request, so that
// the core applies the user's permissions exactly as on AMQP.

type mgSink struct{}

func (mgSink) Deliver(mapping.Delivery) bool { return true }
func (mgSink) Cancelled(string, error)       {}

// withChannel runs fn on a channel of a hidden connection of the request's
// user to vhost, and closes the connection afterwards (unacked messages of
// a get are requeued by the close).
func (m *mgmt) withChannel(c echo.Context, vhost string, fn func(ch *mapping.Channel) error) error {
	u := mgUser(c)
	if _, err := m.s.router.VHost(vhost); err != nil {
		return apiError(http.StatusNotFound, fmt.Sprintf("no vhost '%s'", vhost))
	}
	r := c.Request()
	conn, err := m.s.router.Connect(u.Name, vhost, mapping.ConnInfo{
		Name:     "HTTP " + r.RemoteAddr + " " + r.Method + " " + r.URL.Path,
		Protocol: "HTTP",
		Peer:     r.RemoteAddr,
		Hidden:   true,
	})
	if err != nil {
		return apiError(http.StatusUnauthorized, fmt.Sprintf("access to vhost '%s' refused for user '%s': set permissions first", vhost, u.Name))
	}
	defer conn.Close()
	ch := conn.OpenChannel(1, mgSink{})
	defer ch.Close()
	return coreError(fn(ch))
}

// ---------------------------------------------------------------------------
// Request bodies. rabbitmqadmin sends booleans and numbers as strings
// ("durable": "true", "count": "5"), as RabbitMQ accepts; these types take
// both.

type mgFlexBool struct {
	Set   bool
	Value bool
}

func (b *mgFlexBool) UnmarshalJSON(p []byte) error {
	var v any
	if err := json.Unmarshal(p, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		b.Set, b.Value = true, t
	case string:
		x, err := strconv.ParseBool(t)
		if err != nil {
			return fmt.Errorf("%q is not true or false", t)
		}
		b.Set, b.Value = true, x
	case nil:
	default:
		return fmt.Errorf("%s is not a boolean", p)
	}
	return nil
}

func (b mgFlexBool) or(def bool) bool {
	if b.Set {
		return b.Value
	}
	return def
}

type mgFlexInt struct {
	Set   bool
	Value int64
}

func (n *mgFlexInt) UnmarshalJSON(p []byte) error {
	var v any
	if err := json.Unmarshal(p, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case float64:
		if t != math.Trunc(t) {
			return fmt.Errorf("%v is not an integer", t)
		}
		n.Set, n.Value = true, int64(t)
	case string:
		x, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", t)
		}
		n.Set, n.Value = true, x
	case nil:
	default:
		return fmt.Errorf("%s is not an integer", p)
	}
	return nil
}

// mgMaxBody bounds request bodies other than publish and mgDefinitions.
const mgMaxBody = 1 << 20

// mgBind decodes a JSON request body into v; an empty body leaves v as
// it is (RabbitMQ accepts PUT /api/vhosts/x without a body). A body the
// validator decoded is taken from it, not parsed again.
func mgBind(c echo.Context, v any, limit int64) error {
	if ok, err := mgValidated(c, v, limit, "request body"); ok {
		return err
	}
	r := c.Request()
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), r.Body, limit))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var mbe *http.MaxBytesError
		if ok := mgAsMaxBytes(err, &mbe); ok {
			return apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
		}
		return apiError(http.StatusBadRequest, "the request body is not valid JSON for this call: "+err.Error())
	}
	return nil
}

// mgValidated assigns the body the validator decoded to v, if it did
// (ok); a body over limit is refused as the handler's own read would
// refuse it. what names the body in that refusal.
func mgValidated(c echo.Context, v any, limit int64, what string) (ok bool, err error) {
	n, ok := validate.Size(c)
	if !ok {
		return false, nil
	}
	if int64(n) > limit {
		return true, apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("%s larger than %d bytes", what, limit))
	}
	return validate.Into(c, v)
}

func mgAsMaxBytes(err error, target **http.MaxBytesError) bool {
	for err != nil {
		if e, ok := err.(*http.MaxBytesError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// ---------------------------------------------------------------------------
// Listings: columns, sort, sort_reverse and pagination, as RabbitMQ.

// mgList writes items (a slice of structs or maps) as JSON after applying
// the query parameters.
func mgList(c echo.Context, items any) error {
	q := c.QueryParams()
	cols, sortKey, page := q.Get("columns"), q.Get("sort"), q.Get("page")
	if cols == "" && sortKey == "" && page == "" && q.Get("name") == "" {
		return c.JSON(http.StatusOK, items)
	}
	b, err := json.Marshal(items)
	if err != nil {
		return err
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		return err
	}
	if name := q.Get("name"); name != "" {
		match := func(s string) bool { return strings.Contains(s, name) }
		if q.Get("use_regex") == "true" {
			re, err := regexp.Compile(name)
			if err != nil {
				return apiError(http.StatusBadRequest, "name: invalid regular expression: "+err.Error())
			}
			match = re.MatchString
		}
		kept := rows[:0]
		for _, r := range rows {
			if n, _ := r["name"].(string); match(n) {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	if sortKey != "" {
		path := strings.Split(sortKey, ".")
		sort.SliceStable(rows, func(i, j int) bool { return mgLess(mgDig(rows[i], path), mgDig(rows[j], path)) })
		if q.Get("sort_reverse") == "true" {
			for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
				rows[i], rows[j] = rows[j], rows[i]
			}
		}
	}
	if cols != "" {
		var paths [][]string
		for _, col := range strings.Split(cols, ",") {
			if col = strings.TrimSpace(col); col != "" {
				paths = append(paths, strings.Split(col, "."))
			}
		}
		for i, r := range rows {
			out := map[string]any{}
			for _, p := range paths {
				if v, ok := mgDigOK(r, p); ok {
					mgPut(out, p, v)
				}
			}
			rows[i] = out
		}
	}
	if page == "" {
		return c.JSON(http.StatusOK, rows)
	}
	n, err := strconv.Atoi(page)
	if err != nil || n < 1 {
		return apiError(http.StatusBadRequest, "page must be a positive integer")
	}
	size := 100
	if s := q.Get("page_size"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > 500 {
			return apiError(http.StatusBadRequest, "page_size must be an integer from 1 to 500")
		}
	}
	total := len(rows)
	pages := (total + size - 1) / size
	lo, hi := min((n-1)*size, total), min(n*size, total)
	return c.JSON(http.StatusOK, map[string]any{
		"filtered_count": total, "item_count": hi - lo, "items": rows[lo:hi],
		"page": n, "page_count": pages, "page_size": size, "total_count": total,
	})
}

func mgDig(m map[string]any, path []string) any {
	v, _ := mgDigOK(m, path)
	return v
}

func mgDigOK(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func mgPut(m map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func mgLess(a, b any) bool {
	fa, aNum := a.(float64)
	mgBool, bNum := b.(float64)
	switch {
	case aNum && bNum:
		return fa < mgBool
	case aNum != bNum:
		return aNum // numbers before everything else
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

// mgCreated answers a PUT: 201 when the object is new, 204 when it existed.
func mgCreated(c echo.Context, existed bool) error {
	if existed {
		return c.NoContent(http.StatusNoContent)
	}
	return c.NoContent(http.StatusCreated)
}

// mgBoolParam reads a query flag such as if-unused=true.
func mgBoolParam(c echo.Context, name string) bool {
	v, _ := strconv.ParseBool(c.QueryParam(name))
	return v
}

// mgStructMap turns a response struct into a map, to add fields to it.
func mgStructMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}
