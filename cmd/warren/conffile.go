package main

// The config file: RabbitMQ's rabbitmq.conf format (the "new style"
// sysctl-like format read by cuttlefish): one `key = value` per line, `#`
// starts a comment that runs to the end of the line, blank lines are
// ignored. Warren honours the RabbitMQ keys that mean something to it and
// its own settings under `warren.`; docs/configuration.md lists them all.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// confEntry is one `key = value` line of a config file.
type confEntry struct {
	Line  int
	Key   string
	Value string
}

// parseConf splits a config file into entries. A line that is not a
// comment, blank or `key = value` is an error naming the line.
func parseConf(r io.Reader) ([]confEntry, error) {
	var out []confEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q: want key = value", n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !validConfKey(key) {
			return nil, fmt.Errorf("line %d: %q is not a valid key (letters, digits, _ and - separated by dots)", n, key)
		}
		if value == "" {
			return nil, fmt.Errorf("line %d: %s has no value", n, key)
		}
		out = append(out, confEntry{Line: n, Key: key, Value: value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

func validConfKey(k string) bool {
	if k == "" {
		return false
	}
	for _, part := range strings.Split(k, ".") {
		if part == "" {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return true
}

// confState collects the keys that combine (listeners, ip + port) until
// the whole file is read.
type confState struct {
	tcp, ssl         []string // listeners.tcp.* / listeners.ssl.*; nil = not set
	tcpNone, sslNone bool
	mgmtIP, mgmtPort string
	mgmtSSLIP        string
	mgmtSSLPort      string
	mgmtTCPSet       bool
	mgmtSSLSet       bool
	loopback         []string
	loopbackSet      bool
	mechanisms       []string // auth_mechanisms.*
	tlsVersions      []string // ssl_options.versions.*
}

// confKey is one honoured key: what its value must look like (for the
// error message) and how it changes the config.
type confKey struct {
	want  string
	apply func(cfg *Config, st *confState, key, v string) error
}

// errWant is returned by apply funcs when the value has the wrong shape;
// applyConf turns it into "line N: key = value: want ...".
var errWant = fmt.Errorf("bad value")

// confKeys are the exact keys; confPrefixes take any name after the dot
// (listeners.tcp.default, listeners.tcp.2, loopback_users.guest).
var confKeys = map[string]confKey{
	"listeners.tcp":                     {"none", setListenersNone(false)},
	"listeners.ssl":                     {"none", setListenersNone(true)},
	"ssl_options.cacertfile":            {"a file path", setString(func(c *Config) *string { return &c.TLSCA })},
	"ssl_options.certfile":              {"a file path", setString(func(c *Config) *string { return &c.TLSCert })},
	"ssl_options.keyfile":               {"a file path", setString(func(c *Config) *string { return &c.TLSKey })},
	"ssl_options.verify":                {"verify_peer or verify_none", setVerify},
	"ssl_options.fail_if_no_peer_cert":  {"true or false", setBool(func(c *Config) *bool { return &c.TLSFailIfNoPeerCert })},
	"management.tcp.ip":                 {"an IP address", setIP(func(s *confState) (*string, *bool) { return &s.mgmtIP, &s.mgmtTCPSet })},
	"management.tcp.port":               {"a port number (1-65535)", setPort(func(s *confState) (*string, *bool) { return &s.mgmtPort, &s.mgmtTCPSet })},
	"management.ssl.ip":                 {"an IP address", setIP(func(s *confState) (*string, *bool) { return &s.mgmtSSLIP, &s.mgmtSSLSet })},
	"management.ssl.port":               {"a port number (1-65535)", setPort(func(s *confState) (*string, *bool) { return &s.mgmtSSLPort, &s.mgmtSSLSet })},
	"management.ssl.cacertfile":         {"a file path", setString(func(c *Config) *string { return &c.HTTPSCA })},
	"management.ssl.certfile":           {"a file path", setString(func(c *Config) *string { return &c.HTTPSCert })},
	"management.ssl.keyfile":            {"a file path", setString(func(c *Config) *string { return &c.HTTPSKey })},
	"default_user":                      {"a user name", setString(func(c *Config) *string { return &c.DefaultUser })},
	"default_pass":                      {"a password", setString(func(c *Config) *string { return &c.DefaultPass })},
	"default_vhost":                     {"a vhost name", setString(func(c *Config) *string { return &c.DefaultVHost })},
	"default_queue_type":                {"classic or quorum", setDefaultQueueType},
	"queue_leader_locator":              {"client-local or balanced", setQueueLeaderLocator},
	"loopback_users":                    {"none", setLoopbackNone},
	"heartbeat":                         {"a number of seconds (0 disables heartbeats)", setHeartbeat},
	"frame_max":                         {"a number of bytes from 4096 to 2147483647 (0 = no limit)", setFrameMax},
	"channel_max":                       {"a number from 0 to 65535 (0 = no limit)", setChannelMax},
	"max_message_size":                  {fmt.Sprintf("a number of bytes from 1 to %d", maxMessageSizeLimit), setMaxMessageSize},
	"vm_memory_high_watermark.relative": {"a fraction of RAM above 0 and at most 1, such as 0.4", setMemoryRelative},
	"vm_memory_high_watermark.absolute": {"an amount of memory such as 1073741824, 1024MiB or 2GB", setBytes(func(c *Config) *int64 { return &c.MemoryLimit })},
	"disk_free_limit.absolute":          {"an amount of disk such as 50000000, 50MB or 1GiB", setBytes(func(c *Config) *int64 { return &c.DiskFreeLimit })},
	"log.console.level":                 {"debug, info, warning, error or critical", setLogLevel},

	"warren.data_dir":           {"a directory path", setString(func(c *Config) *string { return &c.DataDir })},
	"warren.sync":               {"always or interval", setSync},
	"warren.cors_origins":       {"comma-separated origins or *", setString(func(c *Config) *string { return &c.CORSOrigins })},
	"warren.ws_allowed_origins": {"comma-separated origins or *", setString(func(c *Config) *string { return &c.WSOrigins })},
	"warren.token_secret":       {"a secret string", setString(func(c *Config) *string { return &c.TokenSecret })},
	"warren.max_connections":    {"a number >= 0 (0 = no limit)", setCount(func(c *Config) *int { return &c.MaxConnections })},
	"warren.max_queues":         {"a number >= 0 (0 = no limit)", setCount(func(c *Config) *int { return &c.MaxQueues })},
	"warren.tls_watch_interval": {"a number of seconds >= 0 (0 = reload only on SIGHUP)", setWatchInterval},

	"warren.cluster.node_name":      {"a node name (letters, digits, _ and -)", setString(func(c *Config) *string { return &c.NodeName })},
	"warren.cluster.addr":           {"host:port", setHostPort(func(c *Config) *string { return &c.ClusterAddr })},
	"warren.cluster.advertise":      {"host:port", setHostPort(func(c *Config) *string { return &c.ClusterAdvertise })},
	"warren.cluster.peers":          {"comma-separated host:port", setPeers},
	"warren.cluster.queue_nodes":    {"comma-separated node names", setQueueNodes},
	"warren.cluster.secret":         {"a secret string", setString(func(c *Config) *string { return &c.ClusterSecret })},
	"warren.cluster.form_timeout":   {"a number of seconds > 0", setFormTimeout},
	"warren.cluster.ssl.certfile":   {"a file path", setString(func(c *Config) *string { return &c.ClusterTLSCert })},
	"warren.cluster.ssl.keyfile":    {"a file path", setString(func(c *Config) *string { return &c.ClusterTLSKey })},
	"warren.cluster.ssl.cacertfile": {"a file path", setString(func(c *Config) *string { return &c.ClusterTLSCA })},
}

var confPrefixes = map[string]confKey{
	"listeners.tcp.":        {"a port, or ip:port", addListener(false)},
	"listeners.ssl.":        {"a port, or ip:port", addListener(true)},
	"loopback_users.":       {"true or false", setLoopbackUser},
	"auth_mechanisms.":      {"PLAIN, AMQPLAIN or EXTERNAL", addMechanism},
	"ssl_options.versions.": {"tlsv1.2 or tlsv1.3", addTLSVersion},
	"warren.cluster.peers.": {"host:port", addPeer},
}

func lookupConfKey(key string) (confKey, bool) {
	if k, ok := confKeys[key]; ok {
		return k, true
	}
	for p, k := range confPrefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return k, true
		}
	}
	return confKey{}, false
}

// applyConf applies the entries to cfg. Unknown keys are returned as
// warnings (naming the key and its line); the first bad value is an error
// with its line and what was expected.
func applyConf(cfg *Config, entries []confEntry, file string) (warnings []string, err error) {
	var st confState
	for _, e := range entries {
		k, ok := lookupConfKey(e.Key)
		if !ok {
			warnings = append(warnings, fmt.Sprintf("%s line %d: unknown key %q ignored", file, e.Line, e.Key))
			continue
		}
		if err := k.apply(cfg, &st, e.Key, e.Value); err != nil {
			if err == errWant {
				return warnings, fmt.Errorf("%s line %d: %s = %s: want %s", file, e.Line, e.Key, e.Value, k.want)
			}
			return warnings, fmt.Errorf("%s line %d: %s = %s: %v", file, e.Line, e.Key, e.Value, err)
		}
	}
	if st.tcpNone {
		cfg.AMQPAddr = "none"
	} else if st.tcp != nil {
		cfg.AMQPAddr = strings.Join(st.tcp, ",")
	}
	if st.sslNone {
		cfg.AMQPSAddr = "none"
	} else if st.ssl != nil {
		cfg.AMQPSAddr = strings.Join(st.ssl, ",")
	}
	if st.mgmtTCPSet {
		cfg.HTTPAddr = hostPort(st.mgmtIP, orDefault(st.mgmtPort, "15672"))
	} else if st.mgmtSSLSet {
		// As RabbitMQ's management plugin: with only an HTTPS listener
		// configured there is no plain one.
		cfg.HTTPAddr = "none"
	}
	if st.mgmtSSLSet {
		cfg.HTTPSAddr = hostPort(st.mgmtSSLIP, orDefault(st.mgmtSSLPort, "15671"))
	}
	if st.tlsVersions != nil {
		cfg.TLSVersions = strings.Join(st.tlsVersions, ",")
	}
	if st.mechanisms != nil {
		cfg.AuthMechanisms = strings.Join(st.mechanisms, ",")
	}
	if st.loopbackSet {
		cfg.LoopbackUsers = st.loopback
		if cfg.LoopbackUsers == nil {
			cfg.LoopbackUsers = []string{}
		}
	}
	return warnings, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func hostPort(ip, port string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + port
	}
	return ip + ":" + port
}

// ---------------------------------------------------------------------------
// Value parsers. Each returns errWant for a value of the wrong shape.

func setString(field func(*Config) *string) func(*Config, *confState, string, string) error {
	return func(c *Config, _ *confState, _, v string) error {
		*field(c) = v
		return nil
	}
}

func parseConfBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errWant
}

func setBool(field func(*Config) *bool) func(*Config, *confState, string, string) error {
	return func(c *Config, _ *confState, _, v string) error {
		b, err := parseConfBool(v)
		*field(c) = b
		return err
	}
}

func setVerify(c *Config, _ *confState, _, v string) error {
	switch v {
	case "verify_peer":
		c.TLSVerifyPeer = true
	case "verify_none":
		c.TLSVerifyPeer = false
	default:
		return errWant
	}
	return nil
}

func parsePort(v string) (string, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return "", errWant
	}
	return strconv.Itoa(n), nil
}

// listenerAddr turns RabbitMQ's listener values ("5672", "127.0.0.1:5672",
// "::1:5672", "[::1]:5672") into a Go listen address.
func listenerAddr(v string) (string, error) {
	if p, err := parsePort(v); err == nil {
		return ":" + p, nil
	}
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return "", errWant
	}
	ip, port := strings.TrimSuffix(strings.TrimPrefix(v[:i], "["), "]"), v[i+1:]
	p, err := parsePort(port)
	if err != nil || !validIP(ip) {
		return "", errWant
	}
	return hostPort(ip, p), nil
}

// validIP: RabbitMQ takes IP addresses here, not host names.
func validIP(s string) bool { return net.ParseIP(s) != nil }

func addListener(ssl bool) func(*Config, *confState, string, string) error {
	return func(_ *Config, st *confState, _, v string) error {
		addr, err := listenerAddr(v)
		if err != nil {
			return err
		}
		if ssl {
			st.ssl, st.sslNone = append(st.ssl, addr), false
		} else {
			st.tcp, st.tcpNone = append(st.tcp, addr), false
		}
		return nil
	}
}

func setListenersNone(ssl bool) func(*Config, *confState, string, string) error {
	return func(_ *Config, st *confState, _, v string) error {
		if v != "none" {
			return errWant
		}
		if ssl {
			st.ssl, st.sslNone = nil, true
		} else {
			st.tcp, st.tcpNone = nil, true
		}
		return nil
	}
}

func setIP(field func(*confState) (*string, *bool)) func(*Config, *confState, string, string) error {
	return func(_ *Config, st *confState, _, v string) error {
		if !validIP(v) {
			return errWant
		}
		dst, set := field(st)
		*dst, *set = v, true
		return nil
	}
}

func setPort(field func(*confState) (*string, *bool)) func(*Config, *confState, string, string) error {
	return func(_ *Config, st *confState, _, v string) error {
		p, err := parsePort(v)
		if err != nil {
			return err
		}
		dst, set := field(st)
		*dst, *set = p, true
		return nil
	}
}

func setLoopbackNone(_ *Config, st *confState, _, v string) error {
	if v != "none" {
		return errWant
	}
	st.loopback, st.loopbackSet = nil, true
	return nil
}

// setLoopbackUser: loopback_users.NAME = true restricts NAME to loopback,
// false lifts it (the list starts empty once the file names anyone, as
// in RabbitMQ where the file's list replaces the default).
func setLoopbackUser(_ *Config, st *confState, key, v string) error {
	b, err := parseConfBool(v)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(key, "loopback_users.")
	st.loopbackSet = true
	out := st.loopback[:0:0]
	for _, u := range st.loopback {
		if u != name {
			out = append(out, u)
		}
	}
	if b {
		out = append(out, name)
	}
	st.loopback = out
	return nil
}

func addMechanism(_ *Config, st *confState, _, v string) error {
	if !validMechanism(v) {
		return errWant
	}
	st.mechanisms = append(st.mechanisms, v)
	return nil
}

func addTLSVersion(_ *Config, st *confState, _, v string) error {
	if v != "tlsv1.2" && v != "tlsv1.3" {
		return errWant
	}
	st.tlsVersions = append(st.tlsVersions, v)
	return nil
}

func parseNonNegInt(v string, limit int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > limit {
		return 0, errWant
	}
	return n, nil
}

func setHeartbeat(c *Config, _ *confState, _, v string) error {
	n, err := parseNonNegInt(v, 65535)
	if err != nil {
		return err
	}
	if n == 0 {
		c.Heartbeat = -1 // RabbitMQ: 0 disables heartbeats
	} else {
		c.Heartbeat = time.Duration(n) * time.Second
	}
	return nil
}

func setFrameMax(c *Config, _ *confState, _, v string) error {
	n, err := parseNonNegInt(v, 1<<31-1)
	if err != nil || (n != 0 && n < 4096) {
		return errWant
	}
	if n == 0 {
		n = 1<<31 - 1
	}
	c.FrameMax = uint32(n)
	return nil
}

func setChannelMax(c *Config, _ *confState, _, v string) error {
	n, err := parseNonNegInt(v, 65535)
	if err != nil {
		return err
	}
	if n == 0 {
		n = 65535
	}
	c.ChannelMax = uint16(n)
	return nil
}

func setMaxMessageSize(c *Config, _ *confState, _, v string) error {
	n, err := parseNonNegInt(v, maxMessageSizeLimit)
	if err != nil || n == 0 {
		return errWant
	}
	c.MaxMessageSize = n
	return nil
}

func setMemoryRelative(c *Config, _ *confState, _, v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		return errWant
	}
	c.MemoryRelative, c.MemoryLimit = f, 0
	return nil
}

// byteUnits are RabbitMQ's information units: the binary ones (k, KiB, M,
// MiB, G, GiB, T, TiB) are powers of 1024, the SI ones (kB, KB, MB, GB,
// TB) powers of 1000.
var byteUnits = map[string]int64{
	"": 1, "k": 1 << 10, "K": 1 << 10, "kiB": 1 << 10, "KiB": 1 << 10, "kB": 1e3, "KB": 1e3,
	"m": 1 << 20, "M": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
	"g": 1 << 30, "G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
	"t": 1 << 40, "T": 1 << 40, "TiB": 1 << 40, "TB": 1e12,
}

func parseBytes(v string) (int64, error) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	mult, ok := byteUnits[strings.TrimSpace(v[i:])]
	if i == 0 || i > 15 || !ok {
		return 0, errWant
	}
	n, _ := strconv.ParseInt(v[:i], 10, 64)
	if n == 0 || n > (1<<62)/mult {
		return 0, errWant
	}
	return n * mult, nil
}

func setBytes(field func(*Config) *int64) func(*Config, *confState, string, string) error {
	return func(c *Config, _ *confState, key, v string) error {
		n, err := parseBytes(v)
		if err != nil {
			return err
		}
		*field(c) = n
		if key == "vm_memory_high_watermark.absolute" {
			c.MemoryRelative = 0
		}
		return nil
	}
}

func setLogLevel(c *Config, _ *confState, _, v string) error {
	switch v {
	case "debug", "info", "warning", "error":
		c.LogLevel = v
	case "critical":
		c.LogLevel = "error" // Warren's most severe level
	default:
		return errWant
	}
	return nil
}

func setDefaultQueueType(c *Config, _ *confState, _, v string) error {
	if _, err := mapping.ParseDefaultQueueType(v); err != nil || v == "" {
		return errWant
	}
	c.DefaultQueueType = v
	return nil
}

func setQueueLeaderLocator(c *Config, _ *confState, _, v string) error {
	if v == "" || (mapping.PlacementConfig{Locator: v}).Check() != nil {
		return errWant
	}
	c.QueueLeaderLocator = v
	return nil
}

func setQueueNodes(c *Config, _ *confState, _, v string) error {
	nodes := splitList(v)
	if len(nodes) == 0 || (mapping.PlacementConfig{Nodes: nodes}).Check() != nil {
		return errWant
	}
	c.ClusterQueueNodes = strings.Join(nodes, ",")
	return nil
}

func setSync(c *Config, _ *confState, _, v string) error {
	if v != "always" && v != "interval" {
		return errWant
	}
	c.Sync = v
	return nil
}

func setCount(field func(*Config) *int) func(*Config, *confState, string, string) error {
	return func(c *Config, _ *confState, _, v string) error {
		n, err := parseNonNegInt(v, 1<<31-1)
		*field(c) = int(n)
		return err
	}
}

func setWatchInterval(c *Config, _ *confState, _, v string) error {
	n, err := parseNonNegInt(v, 86400)
	if err != nil {
		return err
	}
	c.TLSWatchInterval = time.Duration(n) * time.Second
	if n == 0 {
		c.TLSWatchInterval = -1
	}
	return nil
}

// setHostPort takes host:port with a port from 1 to 65535.
func setHostPort(field func(*Config) *string) func(*Config, *confState, string, string) error {
	return func(c *Config, _ *confState, _, v string) error {
		if !validHostPort(v) {
			return errWant
		}
		*field(c) = v
		return nil
	}
}

func validHostPort(v string) bool {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return false
	}
	_, err = parsePort(port)
	return err == nil
}

// setPeers: warren.cluster.peers = host:port,host:port replaces the list.
func setPeers(c *Config, _ *confState, _, v string) error {
	for _, p := range splitList(v) {
		if !validHostPort(p) {
			return errWant
		}
	}
	c.ClusterPeers = strings.Join(splitList(v), ",")
	return nil
}

// addPeer: warren.cluster.peers.NAME = host:port adds one peer (as
// RabbitMQ's cluster_formation.classic_config.nodes.N lists nodes).
func addPeer(c *Config, _ *confState, _, v string) error {
	if !validHostPort(v) {
		return errWant
	}
	c.ClusterPeers = strings.Join(append(splitList(c.ClusterPeers), v), ",")
	return nil
}

func setFormTimeout(c *Config, _ *confState, _, v string) error {
	n, err := parseNonNegInt(v, 86400)
	if err != nil || n == 0 {
		return errWant
	}
	c.ClusterFormTimeout = time.Duration(n) * time.Second
	return nil
}
