package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// Config is everything `warren serve` can be told. defaultConfig fills in
// the embedded defaults; a config file (--config / WARREN_CONFIG, in
// rabbitmq.conf format) overrides them, the environment (WARREN_*) the
// file, and flags the environment.
type Config struct {
	ConfigFile     string
	AMQPAddr       string // comma-separated; "none" = no plain AMQP listener
	AMQPSAddr      string // comma-separated; "" = :5671 when a certificate is set; "none" = off
	HTTPAddr       string // "none" = no plain HTTP listener
	HTTPSAddr      string // "" = :15671 when a certificate is set; "none" = off
	DataDir        string
	LogLevel       string
	MaxMessageSize int64
	Sync           string
	CPUProfile     string
	DefaultUser    string
	DefaultPass    string
	DefaultVHost   string
	LoopbackUsers  []string // nil = ["guest"]
	MemoryLimit    int64
	MemoryRelative float64
	DiskFreeLimit  int64
	MaxConnections int
	MaxQueues      int
	CORSOrigins    string
	WSOrigins      string
	TokenSecret    string
	Heartbeat      time.Duration // 0 = 60s, <0 = off
	FrameMax       uint32        // 0 = 131072
	ChannelMax     uint16        // 0 = 2047
	// AuthMechanisms is a comma-separated list of the SASL mechanisms
	// offered (PLAIN, AMQPLAIN, EXTERNAL); "" = all three.
	AuthMechanisms string

	// TLS for the AMQPS listener, and for HTTPS unless HTTPS* are set.
	TLSCert, TLSKey, TLSCA string
	TLSVerifyPeer          bool
	TLSFailIfNoPeerCert    bool
	// TLSVersions is a comma-separated list of tlsv1.2 and tlsv1.3;
	// "" = both.
	TLSVersions                  string
	HTTPSCert, HTTPSKey, HTTPSCA string
	// TLSWatchInterval is how often certificate files are checked for a
	// change (0 = 10s, <0 = only on SIGHUP).
	TLSWatchInterval time.Duration

	// Cluster (docs/cluster.md): on when NodeName, ClusterAddr or
	// ClusterPeers is set; then all of those and ClusterSecret are needed.
	NodeName           string
	ClusterAddr        string // host:port of the route listener
	ClusterPeers       string // comma-separated host:port of the other nodes' route listeners
	ClusterAdvertise   string // host:port the other nodes reach this node's routes at, when not ClusterAddr (NAT, proxy)
	ClusterSecret      string
	ClusterFormTimeout time.Duration // 0 = 60s
	// Route TLS: all three, or none.
	ClusterTLSCert, ClusterTLSKey, ClusterTLSCA string

	// DefaultQueueType is the x-queue-type of a declaration without one
	// (classic or quorum; "" = classic; docs/queue-types.md).
	DefaultQueueType string
	// QueueLeaderLocator is the locator of a declaration that names none
	// (client-local or balanced; "" = client-local), and
	// ClusterQueueNodes the comma-separated nodes new queues may be homed
	// on ("" = every node): docs/cluster.md "Where a queue lives".
	QueueLeaderLocator string
	ClusterQueueNodes  string

	// Warnings are the config file's unknown keys, logged at start.
	Warnings []string
}

// maxMessageSizeLimit is the largest body a JetStream message can carry
// next to Warren's headers.
const maxMessageSizeLimit = 64<<20 - (64 << 10)

func defaultConfig() Config {
	return Config{
		AMQPAddr:       ":5672",
		HTTPAddr:       ":15672",
		DataDir:        "./data",
		LogLevel:       "info",
		MaxMessageSize: 16 << 20,
		Sync:           "always",
	}
}

// serveFlags binds the flags to cfg; their defaults are cfg's values, so a
// flag that is not given leaves what the file and environment set.
func serveFlags(cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warren serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.ConfigFile, "config", cfg.ConfigFile, "config file in rabbitmq.conf format, see docs/configuration.md (env WARREN_CONFIG)")
	fs.StringVar(&cfg.AMQPAddr, "amqp-addr", cfg.AMQPAddr, "AMQP 0-9-1 listen addresses, comma-separated, or none (env WARREN_AMQP_ADDR)")
	fs.StringVar(&cfg.AMQPSAddr, "amqps-addr", cfg.AMQPSAddr, "AMQP over TLS listen addresses, or none; default :5671 when --tls-cert is set (env WARREN_AMQPS_ADDR)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP listen address, or none (env WARREN_HTTP_ADDR)")
	fs.StringVar(&cfg.HTTPSAddr, "https-addr", cfg.HTTPSAddr, "HTTPS listen address for everything on the HTTP port, or none; default :15671 when --tls-cert is set (env WARREN_HTTPS_ADDR)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM certificate (chain) file for AMQPS and HTTPS (env WARREN_TLS_CERT)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key file of --tls-cert (env WARREN_TLS_KEY)")
	fs.StringVar(&cfg.TLSCA, "tls-ca", cfg.TLSCA, "PEM CA file that client certificates must chain to (env WARREN_TLS_CA)")
	fs.BoolVar(&cfg.TLSVerifyPeer, "tls-verify-peer", cfg.TLSVerifyPeer, "ask AMQPS clients for a certificate and verify it against --tls-ca (env WARREN_TLS_VERIFY_PEER)")
	fs.BoolVar(&cfg.TLSFailIfNoPeerCert, "tls-fail-if-no-peer-cert", cfg.TLSFailIfNoPeerCert, "refuse AMQPS clients without a certificate; needs --tls-verify-peer (env WARREN_TLS_FAIL_IF_NO_PEER_CERT)")
	fs.StringVar(&cfg.TLSVersions, "tls-versions", cfg.TLSVersions, "comma-separated TLS versions served: tlsv1.2, tlsv1.3 (default both; env WARREN_TLS_VERSIONS)")
	fs.StringVar(&cfg.AuthMechanisms, "auth-mechanisms", cfg.AuthMechanisms, "comma-separated SASL mechanisms AMQP clients may log in with: PLAIN, AMQPLAIN, EXTERNAL (default all; env WARREN_AUTH_MECHANISMS)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the JetStream store (env WARREN_DATA_DIR)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error (env WARREN_LOG_LEVEL)")
	fs.Int64Var(&cfg.MaxMessageSize, "max-message-size", cfg.MaxMessageSize, "largest accepted message body in bytes (env WARREN_MAX_MESSAGE_SIZE)")
	fs.StringVar(&cfg.Sync, "sync", cfg.Sync, "when the store fsyncs: always (a confirm means on disk; group commit) or interval (JetStream's 2-minute sync) (env WARREN_SYNC)")
	fs.StringVar(&cfg.DefaultUser, "default-user", cfg.DefaultUser, "administrator created on the first start (env WARREN_DEFAULT_USER; default guest)")
	fs.StringVar(&cfg.DefaultPass, "default-pass", cfg.DefaultPass, "its password (env WARREN_DEFAULT_PASS; default guest)")
	fs.Int64Var(&cfg.MemoryLimit, "memory-high-watermark", cfg.MemoryLimit, "block publishers above this many bytes of memory (0 = 40% of RAM, -1 = off; env WARREN_MEMORY_HIGH_WATERMARK)")
	fs.Int64Var(&cfg.DiskFreeLimit, "disk-free-limit", cfg.DiskFreeLimit, "block publishers when the data disk has less free space (0 = 50 MB, -1 = off; env WARREN_DISK_FREE_LIMIT)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "connections per vhost (0 = no limit; env WARREN_MAX_CONNECTIONS)")
	fs.IntVar(&cfg.MaxQueues, "max-queues", cfg.MaxQueues, "queues per vhost (0 = no limit; env WARREN_MAX_QUEUES)")
	fs.StringVar(&cfg.DefaultQueueType, "default-queue-type", cfg.DefaultQueueType, "queue type of a declaration without x-queue-type when the queue can have it (durable, not exclusive, not auto-delete): classic or quorum (default classic; env WARREN_DEFAULT_QUEUE_TYPE)")
	fs.StringVar(&cfg.CORSOrigins, "cors-origins", cfg.CORSOrigins, "comma-separated browser origins allowed to call /v1/ cross-site, or * (env WARREN_CORS_ORIGINS)")
	fs.StringVar(&cfg.WSOrigins, "ws-allowed-origins", cfg.WSOrigins, "comma-separated origins allowed to open WebSockets besides Warren's own pages, or * (env WARREN_WS_ALLOWED_ORIGINS)")
	fs.StringVar(&cfg.TokenSecret, "token-secret", cfg.TokenSecret, "secret that signs WebSocket tokens; default random per start (env WARREN_TOKEN_SECRET)")
	fs.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "this node's name in a cluster: unique, stable across restarts; letters, digits, _ and - (env WARREN_NODE_NAME)")
	fs.StringVar(&cfg.ClusterAddr, "cluster-addr", cfg.ClusterAddr, "host:port the cluster routes of this node listen on (env WARREN_CLUSTER_ADDR)")
	fs.StringVar(&cfg.ClusterPeers, "cluster-peers", cfg.ClusterPeers, "comma-separated host:port of the other nodes' --cluster-addr (env WARREN_CLUSTER_PEERS)")
	fs.StringVar(&cfg.QueueLeaderLocator, "queue-leader-locator", cfg.QueueLeaderLocator, "in a cluster, the node a new queue is homed on when its declaration names no locator: client-local (the declaring node, default) or balanced (the node with the fewest queues) (env WARREN_QUEUE_LEADER_LOCATOR)")
	fs.StringVar(&cfg.ClusterQueueNodes, "cluster-queue-nodes", cfg.ClusterQueueNodes, "comma-separated nodes that may hold queues; a queue declared on another node is created on one of them (exclusive queues aside). Default: every node; give every node the same list (env WARREN_CLUSTER_QUEUE_NODES)")
	fs.StringVar(&cfg.ClusterAdvertise, "cluster-advertise", cfg.ClusterAdvertise, "host:port the other nodes reach this node's cluster routes at, when not --cluster-addr (behind NAT or a proxy; env WARREN_CLUSTER_ADVERTISE)")
	fs.StringVar(&cfg.ClusterSecret, "cluster-secret", cfg.ClusterSecret, "shared secret every cluster route must present; prefer the env var, a flag shows in process lists (env WARREN_CLUSTER_SECRET)")
	fs.DurationVar(&cfg.ClusterFormTimeout, "cluster-form-timeout", cfg.ClusterFormTimeout, "how long to wait at start for a quorum of the cluster (default 60s; env WARREN_CLUSTER_FORM_TIMEOUT)")
	fs.StringVar(&cfg.ClusterTLSCert, "cluster-tls-cert", cfg.ClusterTLSCert, "PEM certificate for cluster routes, both directions; needs --cluster-tls-key and --cluster-tls-ca (env WARREN_CLUSTER_TLS_CERT)")
	fs.StringVar(&cfg.ClusterTLSKey, "cluster-tls-key", cfg.ClusterTLSKey, "PEM private key of --cluster-tls-cert (env WARREN_CLUSTER_TLS_KEY)")
	fs.StringVar(&cfg.ClusterTLSCA, "cluster-tls-ca", cfg.ClusterTLSCA, "PEM CA file the other nodes' route certificates must chain to (env WARREN_CLUSTER_TLS_CA)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", cfg.CPUProfile, "write a Go CPU profile to this file until shutdown (for performance work)")
	return fs
}

// parseServeFlags builds the config: defaults, then the config file, then
// env vars, then flags. Flags are parsed twice: first to find --config
// (and to report usage errors), then over the file and env values.
func parseServeFlags(args []string, stderr io.Writer) (Config, error) {
	first := defaultConfig()
	fs := serveFlags(&first, stderr)
	if err := fs.Parse(args); err != nil {
		return first, err
	}
	if fs.NArg() > 0 {
		return first, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := defaultConfig()
	path := first.ConfigFile
	if path == "" {
		path = os.Getenv("WARREN_CONFIG")
	}
	if path != "" {
		if err := loadConfFile(&cfg, path); err != nil {
			return cfg, err
		}
	}
	if err := applyEnv(&cfg); err != nil {
		return cfg, err
	}
	if err := serveFlags(&cfg, io.Discard).Parse(args); err != nil {
		return cfg, err
	}
	cfg.ConfigFile = path
	return cfg, finishConfig(&cfg)
}

func loadConfFile(cfg *Config, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	entries, err := parseConf(f)
	if err != nil {
		return fmt.Errorf("config file %s %w", path, err)
	}
	warnings, err := applyConf(cfg, entries, path)
	cfg.Warnings = warnings
	return err
}

func applyEnv(cfg *Config) error {
	env := func(name string, dst *string) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			*dst = v
		}
	}
	env("WARREN_AMQP_ADDR", &cfg.AMQPAddr)
	env("WARREN_AMQPS_ADDR", &cfg.AMQPSAddr)
	env("WARREN_HTTP_ADDR", &cfg.HTTPAddr)
	env("WARREN_HTTPS_ADDR", &cfg.HTTPSAddr)
	env("WARREN_TLS_CERT", &cfg.TLSCert)
	env("WARREN_TLS_KEY", &cfg.TLSKey)
	env("WARREN_TLS_CA", &cfg.TLSCA)
	env("WARREN_TLS_VERSIONS", &cfg.TLSVersions)
	env("WARREN_AUTH_MECHANISMS", &cfg.AuthMechanisms)
	env("WARREN_DATA_DIR", &cfg.DataDir)
	env("WARREN_LOG_LEVEL", &cfg.LogLevel)
	env("WARREN_SYNC", &cfg.Sync)
	env("WARREN_DEFAULT_USER", &cfg.DefaultUser)
	env("WARREN_DEFAULT_PASS", &cfg.DefaultPass)
	env("WARREN_DEFAULT_QUEUE_TYPE", &cfg.DefaultQueueType)
	env("WARREN_CORS_ORIGINS", &cfg.CORSOrigins)
	env("WARREN_WS_ALLOWED_ORIGINS", &cfg.WSOrigins)
	env("WARREN_TOKEN_SECRET", &cfg.TokenSecret)
	env("WARREN_NODE_NAME", &cfg.NodeName)
	env("WARREN_CLUSTER_ADDR", &cfg.ClusterAddr)
	env("WARREN_CLUSTER_PEERS", &cfg.ClusterPeers)
	env("WARREN_CLUSTER_ADVERTISE", &cfg.ClusterAdvertise)
	env("WARREN_QUEUE_LEADER_LOCATOR", &cfg.QueueLeaderLocator)
	env("WARREN_CLUSTER_QUEUE_NODES", &cfg.ClusterQueueNodes)
	env("WARREN_CLUSTER_SECRET", &cfg.ClusterSecret)
	env("WARREN_CLUSTER_TLS_CERT", &cfg.ClusterTLSCert)
	env("WARREN_CLUSTER_TLS_KEY", &cfg.ClusterTLSKey)
	env("WARREN_CLUSTER_TLS_CA", &cfg.ClusterTLSCA)
	if v := os.Getenv("WARREN_CLUSTER_FORM_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("WARREN_CLUSTER_FORM_TIMEOUT=%q: want a duration such as 60s", v)
		}
		cfg.ClusterFormTimeout = d
	}
	for name, dst := range map[string]*bool{"WARREN_TLS_VERIFY_PEER": &cfg.TLSVerifyPeer, "WARREN_TLS_FAIL_IF_NO_PEER_CERT": &cfg.TLSFailIfNoPeerCert} {
		if v := os.Getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", name, v)
			}
			*dst = b
		}
	}
	for name, dst := range map[string]*int64{"WARREN_MEMORY_HIGH_WATERMARK": &cfg.MemoryLimit, "WARREN_DISK_FREE_LIMIT": &cfg.DiskFreeLimit} {
		if v := os.Getenv(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil {
				return fmt.Errorf("%s=%q: want a number of bytes", name, v)
			}
		}
	}
	for name, dst := range map[string]*int{"WARREN_MAX_CONNECTIONS": &cfg.MaxConnections, "WARREN_MAX_QUEUES": &cfg.MaxQueues} {
		if v := os.Getenv(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil || *dst < 0 {
				return fmt.Errorf("%s=%q: want a number >= 0", name, v)
			}
		}
	}
	if v := os.Getenv("WARREN_MAX_MESSAGE_SIZE"); v != "" {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			return fmt.Errorf("WARREN_MAX_MESSAGE_SIZE=%q: want a positive number of bytes", v)
		}
		cfg.MaxMessageSize = n
	}
	return nil
}

// finishConfig checks the combined config and fills in the TLS listener
// defaults (on when a certificate is given).
func finishConfig(cfg *Config) error {
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		return err
	}
	switch cfg.Sync {
	case "interval", "always":
	default:
		return fmt.Errorf("--sync %q: want interval or always", cfg.Sync)
	}
	if cfg.MaxMessageSize <= 0 || cfg.MaxMessageSize > maxMessageSizeLimit {
		return fmt.Errorf("--max-message-size %d: want 1 to %d bytes", cfg.MaxMessageSize, maxMessageSizeLimit)
	}
	if _, err := mapping.ParseDefaultQueueType(cfg.DefaultQueueType); err != nil {
		return fmt.Errorf("--default-queue-type (default_queue_type): %v", err)
	}
	if err := placementConfig(*cfg).Check(); err != nil {
		return fmt.Errorf("--queue-leader-locator / --cluster-queue-nodes: %v", err)
	}
	if (cfg.DefaultUser == "") != (cfg.DefaultPass == "") {
		return fmt.Errorf("--default-user and --default-pass go together")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if (cfg.HTTPSCert == "") != (cfg.HTTPSKey == "") {
		return fmt.Errorf("management.ssl.certfile and management.ssl.keyfile go together")
	}
	if cfg.TLSFailIfNoPeerCert && !cfg.TLSVerifyPeer {
		return fmt.Errorf("--tls-fail-if-no-peer-cert (ssl_options.fail_if_no_peer_cert) needs --tls-verify-peer (ssl_options.verify = verify_peer)")
	}
	if cfg.TLSVerifyPeer && cfg.TLSCA == "" {
		return fmt.Errorf("--tls-verify-peer (ssl_options.verify = verify_peer) needs --tls-ca (ssl_options.cacertfile)")
	}
	if _, _, err := tlsVersionRange(cfg.TLSVersions); err != nil {
		return fmt.Errorf("--tls-versions (ssl_options.versions): %v", err)
	}
	for _, m := range splitList(cfg.AuthMechanisms) {
		if !validMechanism(m) {
			return fmt.Errorf("--auth-mechanisms: %q: want PLAIN, AMQPLAIN or EXTERNAL", m)
		}
	}
	if err := checkCluster(cfg); err != nil {
		return err
	}
	if cfg.AMQPSAddr == "" && cfg.TLSCert != "" {
		cfg.AMQPSAddr = ":5671"
	}
	if cfg.HTTPSAddr == "" && (cfg.TLSCert != "" || cfg.HTTPSCert != "") {
		cfg.HTTPSAddr = ":15671"
	}
	if listenerOn(cfg.AMQPSAddr) && cfg.TLSCert == "" {
		return fmt.Errorf("AMQPS listener %s needs --tls-cert and --tls-key (ssl_options.certfile, ssl_options.keyfile)", cfg.AMQPSAddr)
	}
	if listenerOn(cfg.HTTPSAddr) && cfg.TLSCert == "" && cfg.HTTPSCert == "" {
		return fmt.Errorf("HTTPS listener %s needs --tls-cert and --tls-key (management.ssl.certfile, management.ssl.keyfile)", cfg.HTTPSAddr)
	}
	return nil
}

// tlsVersionRange turns RabbitMQ's version names into the lowest and
// highest version served; Warren serves nothing older than TLS 1.2.
func tlsVersionRange(list string) (lo, hi uint16, err error) {
	lo, hi = tls.VersionTLS12, tls.VersionTLS13
	if list == "" {
		return lo, hi, nil
	}
	lo, hi = tls.VersionTLS13, tls.VersionTLS12
	for _, v := range splitList(list) {
		var n uint16
		switch v {
		case "tlsv1.2":
			n = tls.VersionTLS12
		case "tlsv1.3":
			n = tls.VersionTLS13
		default:
			return 0, 0, fmt.Errorf("%q: want tlsv1.2 or tlsv1.3 (Warren serves nothing older)", v)
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	return lo, hi, nil
}

func validMechanism(m string) bool {
	return m == "PLAIN" || m == "AMQPLAIN" || m == "EXTERNAL"
}

// listenerOn: "", "none" and "off" turn a listener off.
func listenerOn(addrs string) bool {
	return len(listenAddrs(addrs)) > 0
}

func listenAddrs(addrs string) []string {
	switch strings.TrimSpace(addrs) {
	case "", "none", "off":
		return nil
	}
	return splitList(addrs)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
}

// splitList parses a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
