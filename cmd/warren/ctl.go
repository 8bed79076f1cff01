package main

// `warren ctl`: rabbitmqctl's verbs, spoken over the management HTTP API
// of a running Warren (see docs/management.md).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Exit codes, those of rabbitmqctl (sysexits.h).
const (
	ctlExitOK          = 0
	ctlExitUsage       = 64 // bad verb, flag or argument count
	ctlExitDataErr     = 65 // the server refused the data: no such object, already exists, invalid
	ctlExitUnavailable = 69 // the server cannot be reached
	ctlExitSoftware    = 70 // the server failed
	ctlExitNoPerm      = 77 // login refused or not allowed
)

const ctlUsage = `usage: warren ctl [flags] <verb> [arguments]

Talks to a running Warren over its HTTP management API.

Flags (anywhere on the line):
  --url URL            management API base (env WARREN_URL, default http://localhost:15672)
  --cacert FILE        PEM CA that an https:// URL's certificate must chain to (env WARREN_CACERT)
  --username NAME      (env WARREN_USERNAME, default guest)
  --password PASS      (env WARREN_PASSWORD, default guest)
  -p, --vhost VHOST    virtual host (default /)
  --formatter FORMAT   table (default) or json
  -q, --quiet          no informational messages
  --timeout SECONDS    request timeout (default 30)

Verbs:
  add_user USER PASSWORD            delete_user USER
  change_password USER PASSWORD     set_user_tags USER [TAG ...]
  list_users                        authenticate_user USER PASSWORD
  add_vhost VHOST                   delete_vhost VHOST
  list_vhosts [COLUMN ...]
  set_permissions [-p VHOST] USER CONF WRITE READ
  clear_permissions [-p VHOST] USER
  list_permissions [-p VHOST]       list_user_permissions USER
  list_queues [-p VHOST] [COLUMN ...]   (name messages messages_ready messages_unacknowledged
                                         consumers durable auto_delete exclusive arguments
                                         node type leader members online ...)
  list_exchanges [-p VHOST] [COLUMN ...]
  list_bindings [-p VHOST] [COLUMN ...]
  list_connections [COLUMN ...]     close_connection NAME [REASON]
  list_channels [COLUMN ...]        list_consumers [-p VHOST] [COLUMN ...]
  purge_queue [-p VHOST] QUEUE
  delete_queue [-p VHOST] QUEUE [--if-empty|-e] [--if-unused|-u]
  status                            cluster_status
  export_definitions FILE|-         import_definitions FILE|-
  set_parameter [-p VHOST] shovel NAME JSON
  clear_parameter [-p VHOST] shovel NAME
  list_parameters [-p VHOST]        shovel_status
  delete_shovel [-p VHOST] NAME     restart_shovel [-p VHOST] NAME

Exit codes: 0 ok, 64 usage, 65 refused data (not found, invalid, exists),
69 server unreachable, 70 server error, 77 login or permission refused.
`

// ctl is one invocation.
type ctl struct {
	base      *url.URL
	user      string
	pass      string
	vhost     string
	formatter string
	quiet     bool
	timeout   time.Duration
	flags     map[string]bool // verb flags such as --if-empty
	stdout    io.Writer
	stderr    io.Writer
	stdin     io.Reader
	client    *http.Client
	ctx       context.Context
}

// ctlError carries an exit code.
type ctlError struct {
	code int
	msg  string
}

func (e *ctlError) Error() string { return e.msg }

func ctlUsageErr(format string, a ...any) error {
	return &ctlError{ctlExitUsage, fmt.Sprintf(format, a...)}
}

func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &ctl{
		user: ctlEnv("WARREN_USERNAME", "guest"), pass: ctlEnv("WARREN_PASSWORD", "guest"),
		vhost: "/", formatter: "table", timeout: 30 * time.Second, flags: map[string]bool{},
		stdout: stdout, stderr: stderr, stdin: os.Stdin, ctx: ctx,
	}
	rawURL := ctlEnv("WARREN_URL", "http://localhost:15672")
	caFile := ctlEnv("WARREN_CACERT", "")
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", ctlUsageErr("flag %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--url":
			rawURL, err = value()
		case "--cacert":
			caFile, err = value()
		case "--username":
			c.user, err = value()
		case "--password":
			c.pass, err = value()
		case "-p", "--vhost":
			c.vhost, err = value()
		case "--formatter", "-f":
			c.formatter, err = value()
		case "--timeout", "-t":
			var s string
			if s, err = value(); err == nil {
				secs, perr := strconv.ParseFloat(s, 64)
				if perr != nil || secs <= 0 {
					err = ctlUsageErr("--timeout %q: want a number of seconds", s)
				}
				c.timeout = time.Duration(secs * float64(time.Second))
			}
		case "-q", "--quiet", "-s", "--silent":
			c.quiet = true
		case "-e", "--if-empty":
			c.flags["if-empty"] = true
		case "-u", "--if-unused":
			c.flags["if-unused"] = true
		case "-h", "--help":
			fmt.Fprint(stdout, ctlUsage)
			return ctlExitOK
		default:
			err = ctlUsageErr("unknown flag %s", name)
		}
		if err != nil {
			return c.fail(err)
		}
	}
	if c.formatter != "table" && c.formatter != "json" {
		return c.fail(ctlUsageErr("--formatter %q: want table or json", c.formatter))
	}
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c.fail(ctlUsageErr("--url %q: want http://host:port", rawURL))
	}
	c.base = u
	c.client = &http.Client{Timeout: c.timeout}
	if caFile != "" {
		tr, err := ctlTLSTransport(caFile)
		if err != nil {
			return c.fail(ctlUsageErr("--cacert %s: %v", caFile, err))
		}
		c.client.Transport = tr
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, ctlUsage)
		return ctlExitUsage
	}
	verb, vargs := pos[0], pos[1:]
	v, ok := ctlVerbs[verb]
	if !ok {
		return c.fail(ctlUsageErr("unknown verb %q (run 'warren ctl --help')", verb))
	}
	if len(vargs) < v.min || (v.max >= 0 && len(vargs) > v.max) {
		return c.fail(ctlUsageErr("usage: warren ctl %s %s", verb, v.args))
	}
	if err := v.run(c, vargs); err != nil {
		return c.fail(err)
	}
	return ctlExitOK
}

func (c *ctl) fail(err error) int {
	var ce *ctlError
	if errors.As(err, &ce) {
		fmt.Fprintln(c.stderr, "Error:", ce.msg)
		if ce.code == ctlExitUsage {
			fmt.Fprintln(c.stderr, "Run 'warren ctl --help' for the verbs and flags.")
		}
		return ce.code
	}
	fmt.Fprintln(c.stderr, "Error:", err)
	return ctlExitSoftware
}

func ctlEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (c *ctl) info(format string, a ...any) {
	if !c.quiet && c.formatter == "table" {
		fmt.Fprintf(c.stderr, format+"\n", a...)
	}
}

// path joins escaped path segments under /mgmtClient.
func ctlPath(segs ...string) string {
	var b strings.Builder
	b.WriteString("/api")
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// call does one API request; out, when not nil, receives the JSON answer
// (or the raw bytes, for a *[]byte).
func (c *ctl) call(method, path string, body, out any) error {
	return c.callHeader(method, path, body, out, nil)
}

func (c *ctl) callHeader(method, path string, body, out any, header map[string]string) error {
	var rd io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			rd = bytes.NewReader(raw)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			rd = bytes.NewReader(b)
		}
	}
	p, q, _ := strings.Cut(path, "?")
	u := *c.base
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + p
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = q
	req, err := http.NewRequestWithContext(c.ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return &ctlError{ctlExitUnavailable, fmt.Sprintf("no answer from %s within %v", c.base, c.timeout)}
		}
		return &ctlError{ctlExitUnavailable, fmt.Sprintf("cannot reach Warren at %s: %v (is it running? set --url or WARREN_URL)", c.base, errors.Unwrap(err))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return &ctlError{ctlExitUnavailable, fmt.Sprintf("reading the answer from %s: %v", c.base, err)}
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Reason string }
		reason := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Reason != "" {
			reason = e.Reason
		}
		code := ctlExitSoftware
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			code = ctlExitNoPerm
			reason = fmt.Sprintf("refused for user '%s': %s", c.user, reason)
		case resp.StatusCode == http.StatusForbidden:
			code = ctlExitNoPerm
		case resp.StatusCode < 500:
			code = ctlExitDataErr
		}
		return &ctlError{code, fmt.Sprintf("%s (HTTP %d on %s %s)", reason, resp.StatusCode, method, path)}
	}
	if out != nil && len(data) > 0 {
		if raw, ok := out.(*[]byte); ok {
			*raw = data
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return &ctlError{ctlExitSoftware, fmt.Sprintf("unexpected answer to %s %s: %v", method, path, err)}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// verbs

type ctlVerb struct {
	args     string
	min, max int // argument counts; max -1 = any
	run      func(c *ctl, args []string) error
}

var ctlVerbs map[string]ctlVerb

func init() {
	ctlVerbs = map[string]ctlVerb{
		"add_user":              {"USER PASSWORD", 2, 2, ctlAddUser},
		"delete_user":           {"USER", 1, 1, ctlDeleteUser},
		"change_password":       {"USER PASSWORD", 2, 2, ctlChangePassword},
		"authenticate_user":     {"USER PASSWORD", 2, 2, ctlAuthenticateUser},
		"list_users":            {"", 0, 0, ctlListUsers},
		"set_user_tags":         {"USER [TAG ...]", 1, -1, ctlSetUserTags},
		"add_vhost":             {"VHOST", 1, 1, ctlAddVHost},
		"delete_vhost":          {"VHOST", 1, 1, ctlDeleteVHost},
		"list_vhosts":           {"[COLUMN ...]", 0, -1, ctlListVHosts},
		"set_permissions":       {"[-p VHOST] USER CONF WRITE READ", 4, 4, ctlSetPermissions},
		"clear_permissions":     {"[-p VHOST] USER", 1, 1, ctlClearPermissions},
		"list_permissions":      {"[-p VHOST]", 0, 0, ctlListPermissions},
		"list_user_permissions": {"USER", 1, 1, ctlListUserPermissions},
		"list_queues":           {"[-p VHOST] [COLUMN ...]", 0, -1, ctlListQueues},
		"list_exchanges":        {"[-p VHOST] [COLUMN ...]", 0, -1, ctlListExchanges},
		"list_bindings":         {"[-p VHOST] [COLUMN ...]", 0, -1, ctlListBindings},
		"list_connections":      {"[COLUMN ...]", 0, -1, ctlListConnections},
		"close_connection":      {"NAME [REASON]", 1, 2, ctlCloseConnection},
		"list_channels":         {"[COLUMN ...]", 0, -1, ctlListChannels},
		"list_consumers":        {"[-p VHOST] [COLUMN ...]", 0, -1, ctlListConsumers},
		"purge_queue":           {"[-p VHOST] QUEUE", 1, 1, ctlPurgeQueue},
		"delete_queue":          {"[-p VHOST] QUEUE [--if-empty] [--if-unused]", 1, 1, ctlDeleteQueue},
		"status":                {"", 0, 0, ctlStatus},
		"cluster_status":        {"", 0, 0, ctlClusterStatus},
		"export_definitions":    {"FILE|-", 1, 1, ctlExportDefinitions},
		"import_definitions":    {"FILE|-", 1, 1, ctlImportDefinitions},
		"set_parameter":         {"[-p VHOST] COMPONENT NAME JSON", 3, 3, ctlSetParameter},
		"clear_parameter":       {"[-p VHOST] COMPONENT NAME", 2, 2, ctlClearParameter},
		"list_parameters":       {"[-p VHOST] [COLUMN ...]", 0, -1, ctlListParameters},
		"shovel_status":         {"[COLUMN ...]", 0, -1, ctlShovelStatus},
		"delete_shovel":         {"[-p VHOST] NAME", 1, 1, ctlDeleteShovel},
		"restart_shovel":        {"[-p VHOST] NAME", 1, 1, ctlRestartShovel},
	}
}

func ctlAddUser(c *ctl, a []string) error {
	c.info("Adding user \"%s\" ...", a[0])
	var existing map[string]any
	if err := c.call("GET", ctlPath("users", a[0]), nil, &existing); err == nil {
		return &ctlError{ctlExitDataErr, fmt.Sprintf("user '%s' already exists", a[0])}
	} else if ce, ok := err.(*ctlError); !ok || ce.code != ctlExitDataErr {
		return err
	}
	return c.call("PUT", ctlPath("users", a[0]), map[string]any{"password": a[1], "tags": ""}, nil)
}

func ctlDeleteUser(c *ctl, a []string) error {
	c.info("Deleting user \"%s\" ...", a[0])
	return c.call("DELETE", ctlPath("users", a[0]), nil, nil)
}

func (c *ctl) getUser(name string) (map[string]any, error) {
	var u map[string]any
	err := c.call("GET", ctlPath("users", name), nil, &u)
	return u, err
}

func ctlChangePassword(c *ctl, a []string) error {
	c.info("Changing password for user \"%s\" ...", a[0])
	u, err := c.getUser(a[0])
	if err != nil {
		return err
	}
	return c.call("PUT", ctlPath("users", a[0]), map[string]any{"password": a[1], "tags": u["tags"]}, nil)
}

// authenticate_user checks a password by asking the API who it is.
func ctlAuthenticateUser(c *ctl, a []string) error {
	c.info("Authenticating user \"%s\" ...", a[0])
	other := *c
	other.user, other.pass = a[0], a[1]
	var who map[string]any
	if err := other.call("GET", "/api/whoami", nil, &who); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "Success")
	return nil
}

func ctlSetUserTags(c *ctl, a []string) error {
	c.info("Setting tags for user \"%s\" to [%s] ...", a[0], strings.Join(a[1:], ", "))
	u, err := c.getUser(a[0])
	if err != nil {
		return err
	}
	return c.call("PUT", ctlPath("users", a[0]), map[string]any{
		"password_hash": u["password_hash"], "hashing_algorithm": u["hashing_algorithm"], "tags": strings.Join(a[1:], ","),
	}, nil)
}

func ctlListUsers(c *ctl, _ []string) error {
	c.info("Listing users ...")
	return c.listing("/api/users", []string{"user", "tags"}, nil, map[string]string{"user": "name"})
}

func ctlAddVHost(c *ctl, a []string) error {
	c.info("Adding vhost \"%s\" ...", a[0])
	return c.call("PUT", ctlPath("vhosts", a[0]), map[string]any{}, nil)
}

func ctlDeleteVHost(c *ctl, a []string) error {
	c.info("Deleting vhost \"%s\" ...", a[0])
	return c.call("DELETE", ctlPath("vhosts", a[0]), nil, nil)
}

func ctlListVHosts(c *ctl, a []string) error {
	c.info("Listing vhosts ...")
	return c.listing("/api/vhosts", []string{"name"}, a, nil)
}

func ctlSetPermissions(c *ctl, a []string) error {
	c.info("Setting permissions for user \"%s\" in vhost \"%s\" ...", a[0], c.vhost)
	return c.call("PUT", ctlPath("permissions", c.vhost, a[0]), map[string]string{"configure": a[1], "write": a[2], "read": a[3]}, nil)
}

func ctlClearPermissions(c *ctl, a []string) error {
	c.info("Clearing permissions for user \"%s\" in vhost \"%s\" ...", a[0], c.vhost)
	return c.call("DELETE", ctlPath("permissions", c.vhost, a[0]), nil, nil)
}

func ctlListPermissions(c *ctl, _ []string) error {
	c.info("Listing permissions for vhost \"%s\" ...", c.vhost)
	return c.listing(ctlPath("vhosts", c.vhost, "permissions"), []string{"user", "configure", "write", "read"}, nil, nil)
}

func ctlListUserPermissions(c *ctl, a []string) error {
	c.info("Listing permissions for user \"%s\" ...", a[0])
	return c.listing(ctlPath("users", a[0], "permissions"), []string{"vhost", "configure", "write", "read"}, nil, nil)
}

func ctlListQueues(c *ctl, a []string) error {
	c.info("Listing queues for vhost %s ...", c.vhost)
	// node and type are in every queue; leader, members and online only
	// in quorum queues (empty for the others, as rabbitmqctl prints them).
	return c.listing(ctlPath("queues", c.vhost), []string{"name", "messages"}, a,
		map[string]string{"leader": "?leader", "members": "?members", "online": "?online"})
}

func ctlListExchanges(c *ctl, a []string) error {
	c.info("Listing exchanges for vhost %s ...", c.vhost)
	return c.listing(ctlPath("exchanges", c.vhost), []string{"name", "type"}, a, nil)
}

func ctlListBindings(c *ctl, a []string) error {
	c.info("Listing bindings for vhost %s...", c.vhost)
	return c.listing(ctlPath("bindings", c.vhost),
		[]string{"source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"}, a,
		map[string]string{"source_name": "source", "destination_name": "destination", "destination_kind": "destination_type", "source_kind": "=exchange"})
}

func ctlListConnections(c *ctl, a []string) error {
	c.info("Listing connections ...")
	return c.listing("/api/connections", []string{"user", "peer_host", "peer_port", "state"}, a, nil)
}

func ctlCloseConnection(c *ctl, a []string) error {
	c.info("Closing connection \"%s\" ...", a[0])
	var h map[string]string
	if len(a) > 1 {
		h = map[string]string{"X-Reason": a[1]}
	}
	return c.callHeader("DELETE", ctlPath("connections", a[0]), nil, nil, h)
}

func ctlListChannels(c *ctl, a []string) error {
	c.info("Listing channels ...")
	return c.listing("/api/channels", []string{"name", "user", "consumer_count", "messages_unacknowledged"}, a, map[string]string{"pid": "name"})
}

func ctlListConsumers(c *ctl, a []string) error {
	c.info("Listing consumers in vhost %s ...", c.vhost)
	return c.listing(ctlPath("consumers", c.vhost),
		[]string{"queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"}, a,
		map[string]string{"queue_name": "queue.name", "channel_pid": "channel_details.name"})
}

func ctlPurgeQueue(c *ctl, a []string) error {
	c.info("Purging queue '%s' in vhost '%s' ...", a[0], c.vhost)
	return c.call("DELETE", ctlPath("queues", c.vhost, a[0], "contents"), nil, nil)
}

func ctlDeleteQueue(c *ctl, a []string) error {
	c.info("Deleting queue '%s' on vhost '%s' ...", a[0], c.vhost)
	path := ctlPath("queues", c.vhost, a[0])
	var q []string
	if c.flags["if-empty"] {
		q = append(q, "if-empty=true")
	}
	if c.flags["if-unused"] {
		q = append(q, "if-unused=true")
	}
	if len(q) > 0 {
		path += "?" + strings.Join(q, "&")
	}
	return c.call("DELETE", path, nil, nil)
}

func ctlStatus(c *ctl, _ []string) error {
	var ov, node map[string]any
	if err := c.call("GET", "/api/overview", nil, &ov); err != nil {
		return err
	}
	var nodes []map[string]any
	if err := c.call("GET", "/api/nodes", nil, &nodes); err == nil {
		for _, n := range nodes {
			if n["name"] == ov["node"] { // the node answering, in a cluster too
				node = n
			}
		}
	}
	if c.formatter == "json" {
		return ctlWriteJSON(c.stdout, map[string]any{"overview": ov, "node": node})
	}
	c.info("Status of node %v ...", ov["node"])
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%s\n", k, ctlCell(v)) }
	row("Node", ov["node"])
	row("Product", fmt.Sprintf("%v %v (RabbitMQ %v management API)", ov["product_name"], ov["product_version"], ov["rabbitmq_version"]))
	row("Runtime", ov["erlang_version"])
	if node != nil {
		row("Uptime (seconds)", int64(ctlNum(node["uptime"])/1000))
		row("Memory used (bytes)", int64(ctlNum(node["mem_used"])))
		row("File descriptors", fmt.Sprintf("%v / %v", node["fd_used"], node["fd_total"]))
		row("Goroutines", node["proc_used"])
		row("Processors", node["processors"])
	}
	if ot, ok := ov["object_totals"].(map[string]any); ok {
		for _, k := range []string{"connections", "channels", "consumers", "exchanges", "queues"} {
			row("Total "+k, ot[k])
		}
	}
	if qt, ok := ov["queue_totals"].(map[string]any); ok {
		row("Messages (ready / unacked)", fmt.Sprintf("%v (%v / %v)", qt["messages"], qt["messages_ready"], qt["messages_unacknowledged"]))
	}
	if ms, ok := ov["message_stats"].(map[string]any); ok {
		for _, k := range []string{"publish", "deliver_get", "ack"} {
			rate := 0.0
			if d, ok := ms[k+"_details"].(map[string]any); ok {
				rate = ctlNum(d["rate"])
			}
			row("Messages "+k, fmt.Sprintf("%v (%.1f/s)", ms[k], rate))
		}
	}
	row("Alarms", "none")
	return tw.Flush()
}

func ctlNum(v any) float64 {
	f, _ := v.(float64)
	return f
}

func ctlExportDefinitions(c *ctl, a []string) error {
	var raw []byte
	path := "/api/definitions"
	if c.vhostSet() {
		path = ctlPath("definitions", c.vhost)
	}
	if err := c.call("GET", path, nil, &raw); err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") == nil {
		raw = append(pretty.Bytes(), '\n')
	}
	if a[0] == "-" {
		_, err := c.stdout.Write(raw)
		return err
	}
	c.info("Exporting definitions to a file at \"%s\" ...", a[0])
	if err := os.WriteFile(a[0], raw, 0o600); err != nil {
		return &ctlError{ctlExitDataErr, err.Error()}
	}
	return nil
}

func ctlImportDefinitions(c *ctl, a []string) error {
	var raw []byte
	var err error
	if a[0] == "-" {
		raw, err = io.ReadAll(c.stdin)
	} else {
		c.info("Importing definitions from a file at \"%s\" ...", a[0])
		raw, err = os.ReadFile(a[0])
	}
	if err != nil {
		return &ctlError{ctlExitDataErr, err.Error()}
	}
	if !json.Valid(raw) {
		return &ctlError{ctlExitDataErr, fmt.Sprintf("%s is not a JSON document", a[0])}
	}
	path := "/api/definitions"
	if c.vhostSet() {
		path = ctlPath("definitions", c.vhost)
	}
	return c.call("POST", path, raw, nil)
}

// vhostSet: -p given with a vhost other than the default (definitions
// are then per vhost, as rabbitmqctl's).
func (c *ctl) vhostSet() bool { return c.vhost != "/" }

// ---------------------------------------------------------------------------
// output

// listing fetches a JSON list and prints columns of it. alias maps a
// rabbitmqctl column name to a dotted JSON path ("=value" for a constant,
// "?path" for a field only some objects have: an empty cell for the
// others, never "unknown column").
func (c *ctl) listing(path string, defaults, cols []string, alias map[string]string) error {
	var rows []map[string]any
	if err := c.call("GET", path, nil, &rows); err != nil {
		return err
	}
	if len(cols) == 0 {
		cols = defaults
	}
	get := func(r map[string]any, col string) (any, bool) {
		p := col
		if a, ok := alias[col]; ok {
			if v, isConst := strings.CutPrefix(a, "="); isConst {
				return v, true
			}
			p = strings.TrimPrefix(a, "?")
		}
		var cur any = r
		for _, part := range strings.Split(p, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[part]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	if len(rows) > 0 {
		for _, col := range cols {
			found := strings.HasPrefix(alias[col], "?")
			for _, r := range rows {
				if _, ok := get(r, col); ok {
					found = true
					break
				}
			}
			if !found {
				return ctlUsageErr("unknown column %q; the objects have: %s", col, strings.Join(ctlKeys(rows[0]), ", "))
			}
		}
	}
	if c.formatter == "json" {
		out := make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			o := map[string]any{}
			for _, col := range cols {
				v, _ := get(r, col)
				o[col] = v
			}
			out = append(out, o)
		}
		return ctlWriteJSON(c.stdout, out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, col := range cols {
			v, _ := get(r, col)
			cells[i] = ctlCell(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func ctlKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ctlCell formats a value as rabbitmqctl's table formatter does.
func ctlCell(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		if t == float64(int64(t)) {
			return strconv.FormatInt(int64(t), 10)
		}
		return strconv.FormatFloat(t, 'f', -1, 64)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = ctlCell(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		if len(t) == 0 {
			return "[]"
		}
		b, _ := json.Marshal(t)
		return string(b)
	}
	return fmt.Sprint(v)
}

func ctlWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
