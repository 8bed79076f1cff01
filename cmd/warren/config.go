package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Config is everything `warren serve` can be told. The zero value is not
// used directly: defaultConfig fills in the embedded defaults, then the
// environment (WARREN_*) and then flags override them.
type Config struct {
	AMQPAddr       string
	HTTPAddr       string
	DataDir        string
	LogLevel       string
	MaxMessageSize int64
	Sync           string
	CPUProfile     string
	DefaultUser    string
	DefaultPass    string
	MemoryLimit    int64
	DiskFreeLimit  int64
	MaxConnections int
	MaxQueues      int
	CORSOrigins    string
	WSOrigins      string
	TokenSecret    string
}

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

// parseServeFlags reads env vars first so that flags win over them.
func parseServeFlags(args []string, stderr io.Writer) (Config, error) {
	cfg := defaultConfig()
	env := func(name string, dst *string) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			*dst = v
		}
	}
	env("WARREN_AMQP_ADDR", &cfg.AMQPAddr)
	env("WARREN_HTTP_ADDR", &cfg.HTTPAddr)
	env("WARREN_DATA_DIR", &cfg.DataDir)
	env("WARREN_LOG_LEVEL", &cfg.LogLevel)
	env("WARREN_SYNC", &cfg.Sync)
	env("WARREN_DEFAULT_USER", &cfg.DefaultUser)
	env("WARREN_DEFAULT_PASS", &cfg.DefaultPass)
	env("WARREN_CORS_ORIGINS", &cfg.CORSOrigins)
	env("WARREN_WS_ALLOWED_ORIGINS", &cfg.WSOrigins)
	env("WARREN_TOKEN_SECRET", &cfg.TokenSecret)
	for name, dst := range map[string]*int64{"WARREN_MEMORY_HIGH_WATERMARK": &cfg.MemoryLimit, "WARREN_DISK_FREE_LIMIT": &cfg.DiskFreeLimit} {
		if v := os.Getenv(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil {
				return cfg, fmt.Errorf("%s=%q: want a number of bytes", name, v)
			}
		}
	}
	for name, dst := range map[string]*int{"WARREN_MAX_CONNECTIONS": &cfg.MaxConnections, "WARREN_MAX_QUEUES": &cfg.MaxQueues} {
		if v := os.Getenv(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil || *dst < 0 {
				return cfg, fmt.Errorf("%s=%q: want a number >= 0", name, v)
			}
		}
	}
	if v := os.Getenv("WARREN_MAX_MESSAGE_SIZE"); v != "" {
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			return cfg, fmt.Errorf("WARREN_MAX_MESSAGE_SIZE=%q: want a positive number of bytes", v)
		}
		cfg.MaxMessageSize = n
	}

	fs := flag.NewFlagSet("warren serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.AMQPAddr, "amqp-addr", cfg.AMQPAddr, "AMQP 0-9-1 listen address (env WARREN_AMQP_ADDR)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP listen address (env WARREN_HTTP_ADDR)")
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
	fs.StringVar(&cfg.CORSOrigins, "cors-origins", cfg.CORSOrigins, "comma-separated browser origins allowed to call /v1/ cross-site, or * (env WARREN_CORS_ORIGINS)")
	fs.StringVar(&cfg.WSOrigins, "ws-allowed-origins", cfg.WSOrigins, "comma-separated origins allowed to open WebSockets besides Warren's own pages, or * (env WARREN_WS_ALLOWED_ORIGINS)")
	fs.StringVar(&cfg.TokenSecret, "token-secret", cfg.TokenSecret, "secret that signs WebSocket tokens; default random per start (env WARREN_TOKEN_SECRET)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile to this file until shutdown (for performance work)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		return cfg, err
	}
	switch cfg.Sync {
	case "interval", "always":
	default:
		return cfg, fmt.Errorf("--sync %q: want interval or always", cfg.Sync)
	}
	if cfg.MaxMessageSize <= 0 || cfg.MaxMessageSize > 64<<20-(64<<10) {
		return cfg, fmt.Errorf("--max-message-size %d: want 1 to %d bytes", cfg.MaxMessageSize, 64<<20-(64<<10))
	}
	if (cfg.DefaultUser == "") != (cfg.DefaultPass == "") {
		return cfg, fmt.Errorf("--default-user and --default-pass go together")
	}
	return cfg, nil
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
