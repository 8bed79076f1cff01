package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// confFromText applies a config file's text to the defaults.
func confFromText(t testing.TB, text string) (Config, []string, error) {
	t.Helper()
	cfg := defaultConfig()
	entries, err := parseConf(strings.NewReader(text))
	if err != nil {
		return cfg, nil, err
	}
	warnings, err := applyConf(&cfg, entries, "rabbitmq.conf")
	return cfg, warnings, err
}

// TestConfKeys: each honoured key, the value it takes and what it sets.
func TestConfKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want func(c *Config)
	}{
		{"listeners.tcp.default = 5673", func(c *Config) { c.AMQPAddr = ":5673" }},
		{"listeners.tcp.1 = 127.0.0.1:5673\nlisteners.tcp.2 = ::1:5673", func(c *Config) { c.AMQPAddr = "127.0.0.1:5673,[::1]:5673" }},
		{"listeners.tcp.1 = [::1]:5673", func(c *Config) { c.AMQPAddr = "[::1]:5673" }},
		{"listeners.tcp = none", func(c *Config) { c.AMQPAddr = "none" }},
		{"listeners.ssl.default = 5671", func(c *Config) { c.AMQPSAddr = ":5671" }},
		{"listeners.ssl.default = 0.0.0.0:5681", func(c *Config) { c.AMQPSAddr = "0.0.0.0:5681" }},
		{"listeners.ssl = none", func(c *Config) { c.AMQPSAddr = "none" }},
		{"ssl_options.cacertfile = /etc/ca.pem", func(c *Config) { c.TLSCA = "/etc/ca.pem" }},
		{"ssl_options.certfile = /etc/cert.pem", func(c *Config) { c.TLSCert = "/etc/cert.pem" }},
		{"ssl_options.keyfile = /etc/key.pem", func(c *Config) { c.TLSKey = "/etc/key.pem" }},
		{"ssl_options.verify = verify_peer", func(c *Config) { c.TLSVerifyPeer = true }},
		{"ssl_options.verify = verify_none", func(c *Config) {}},
		{"ssl_options.fail_if_no_peer_cert = true", func(c *Config) { c.TLSFailIfNoPeerCert = true }},
		{"management.tcp.port = 15680", func(c *Config) { c.HTTPAddr = ":15680" }},
		{"management.tcp.ip = 127.0.0.1", func(c *Config) { c.HTTPAddr = "127.0.0.1:15672" }},
		{"management.tcp.ip = ::1\nmanagement.tcp.port = 15680", func(c *Config) { c.HTTPAddr = "[::1]:15680" }},
		{"management.ssl.port = 15681", func(c *Config) { c.HTTPSAddr, c.HTTPAddr = ":15681", "none" }},
		{"management.ssl.ip = 127.0.0.1\nmanagement.tcp.port = 15672", func(c *Config) { c.HTTPSAddr, c.HTTPAddr = "127.0.0.1:15671", ":15672" }},
		{"management.ssl.cacertfile = /m/ca.pem", func(c *Config) { c.HTTPSCA = "/m/ca.pem" }},
		{"management.ssl.certfile = /m/cert.pem", func(c *Config) { c.HTTPSCert = "/m/cert.pem" }},
		{"management.ssl.keyfile = /m/key.pem", func(c *Config) { c.HTTPSKey = "/m/key.pem" }},
		{"default_user = admin", func(c *Config) { c.DefaultUser = "admin" }},
		{"default_pass = s3cret!", func(c *Config) { c.DefaultPass = "s3cret!" }},
		{"default_vhost = prod", func(c *Config) { c.DefaultVHost = "prod" }},
		{"default_queue_type = quorum", func(c *Config) { c.DefaultQueueType = "quorum" }},
		{"default_queue_type = classic", func(c *Config) { c.DefaultQueueType = "classic" }},
		{"queue_leader_locator = balanced", func(c *Config) { c.QueueLeaderLocator = "balanced" }},
		{"warren.cluster.queue_nodes = n1, n2", func(c *Config) { c.ClusterQueueNodes = "n1,n2" }},
		{"loopback_users = none", func(c *Config) { c.LoopbackUsers = []string{} }},
		{"loopback_users.guest = false", func(c *Config) { c.LoopbackUsers = []string{} }},
		{"loopback_users.guest = true\nloopback_users.ops = true", func(c *Config) { c.LoopbackUsers = []string{"guest", "ops"} }},
		{"auth_mechanisms.1 = EXTERNAL\nauth_mechanisms.2 = PLAIN", func(c *Config) { c.AuthMechanisms = "EXTERNAL,PLAIN" }},
		{"ssl_options.versions.1 = tlsv1.3", func(c *Config) { c.TLSVersions = "tlsv1.3" }},
		{"ssl_options.versions.1 = tlsv1.2\nssl_options.versions.2 = tlsv1.3", func(c *Config) { c.TLSVersions = "tlsv1.2,tlsv1.3" }},
		{"heartbeat = 30", func(c *Config) { c.Heartbeat = 30 * time.Second }},
		{"heartbeat = 0", func(c *Config) { c.Heartbeat = -1 }},
		{"frame_max = 4096", func(c *Config) { c.FrameMax = 4096 }},
		{"frame_max = 0", func(c *Config) { c.FrameMax = 1<<31 - 1 }},
		{"channel_max = 128", func(c *Config) { c.ChannelMax = 128 }},
		{"channel_max = 0", func(c *Config) { c.ChannelMax = 65535 }},
		{"max_message_size = 1048576", func(c *Config) { c.MaxMessageSize = 1 << 20 }},
		{"vm_memory_high_watermark.relative = 0.6", func(c *Config) { c.MemoryRelative = 0.6 }},
		{"vm_memory_high_watermark.absolute = 1073741824", func(c *Config) { c.MemoryLimit = 1 << 30 }},
		{"vm_memory_high_watermark.absolute = 1024MiB", func(c *Config) { c.MemoryLimit = 1 << 30 }},
		{"vm_memory_high_watermark.absolute = 2GB", func(c *Config) { c.MemoryLimit = 2e9 }},
		{"vm_memory_high_watermark.relative = 0.5\nvm_memory_high_watermark.absolute = 512M", func(c *Config) { c.MemoryLimit = 512 << 20 }},
		{"disk_free_limit.absolute = 50MB", func(c *Config) { c.DiskFreeLimit = 50e6 }},
		{"disk_free_limit.absolute = 1GiB", func(c *Config) { c.DiskFreeLimit = 1 << 30 }},
		{"disk_free_limit.absolute = 2kB", func(c *Config) { c.DiskFreeLimit = 2000 }},
		{"log.console.level = debug", func(c *Config) { c.LogLevel = "debug" }},
		{"log.console.level = warning", func(c *Config) { c.LogLevel = "warning" }},
		{"log.console.level = critical", func(c *Config) { c.LogLevel = "error" }},
		{"warren.data_dir = /var/lib/warren", func(c *Config) { c.DataDir = "/var/lib/warren" }},
		{"warren.sync = interval", func(c *Config) { c.Sync = "interval" }},
		{"warren.cors_origins = https://a.example, https://b.example", func(c *Config) { c.CORSOrigins = "https://a.example, https://b.example" }},
		{"warren.ws_allowed_origins = *", func(c *Config) { c.WSOrigins = "*" }},
		{"warren.token_secret = abc", func(c *Config) { c.TokenSecret = "abc" }},
		{"warren.max_connections = 100", func(c *Config) { c.MaxConnections = 100 }},
		{"warren.max_queues = 10", func(c *Config) { c.MaxQueues = 10 }},
		{"warren.tls_watch_interval = 60", func(c *Config) { c.TLSWatchInterval = time.Minute }},
		{"warren.tls_watch_interval = 0", func(c *Config) { c.TLSWatchInterval = -1 }},
		// Comments, blank lines, spacing.
		{"# a comment\n\n   heartbeat=15   # trailing comment\r\n", func(c *Config) { c.Heartbeat = 15 * time.Second }},
	}
	for _, tc := range cases {
		got, warnings, err := confFromText(t, tc.text)
		if err != nil || len(warnings) > 0 {
			t.Errorf("%q: err %v, warnings %v", tc.text, err, warnings)
			continue
		}
		want := defaultConfig()
		tc.want(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.text, got, want)
		}
	}
}

// TestConfBadValues: a bad value stops with its line and what was wanted.
func TestConfBadValues(t *testing.T) {
	t.Parallel()
	cases := []struct{ text, want string }{
		{"auth_mechanisms.1 = CRAM-MD5", "want PLAIN, AMQPLAIN or EXTERNAL"},
		{"ssl_options.versions.1 = tlsv1.1", "want tlsv1.2 or tlsv1.3"},
		{"heartbeat = soon", "line 1: heartbeat = soon: want a number of seconds"},
		{"# c\nheartbeat = -5", "line 2: heartbeat = -5: want a number of seconds"},
		{"listeners.tcp.default = 70000", "line 1: listeners.tcp.default = 70000: want a port, or ip:port"},
		{"listeners.tcp.default = example.com:5672", "want a port, or ip:port"},
		{"listeners.tcp = some", "want none"},
		{"ssl_options.verify = yes", "want verify_peer or verify_none"},
		{"ssl_options.fail_if_no_peer_cert = 1", "want true or false"},
		{"management.tcp.port = http", "want a port number (1-65535)"},
		{"management.tcp.ip = localhost", "want an IP address"},
		{"loopback_users = guest", "want none"},
		{"loopback_users.guest = maybe", "want true or false"},
		{"frame_max = 100", "want a number of bytes from 4096"},
		{"channel_max = 70000", "want a number from 0 to 65535"},
		{"max_message_size = 0", "want a number of bytes from 1 to"},
		{"max_message_size = 536870912", "want a number of bytes from 1 to"},
		{"vm_memory_high_watermark.relative = 1.5", "want a fraction of RAM"},
		{"vm_memory_high_watermark.absolute = 2 bananas", "want an amount of memory"},
		{"disk_free_limit.absolute = 50XB", "want an amount of disk"},
		{"log.console.level = chatty", "want debug, info, warning, error or critical"},
		{"warren.sync = sometimes", "want always or interval"},
		{"default_queue_type = stream", "line 1: default_queue_type = stream: want classic or quorum"},
		{"queue_leader_locator = nearest", "line 1: queue_leader_locator = nearest: want client-local or balanced"},
		{"warren.cluster.queue_nodes = n 1", "want comma-separated node names"},
		{"warren.max_queues = -1", "want a number >= 0"},
		{"heartbeat 30", "line 1: \"heartbeat 30\": want key = value"},
		{"\n\nheartbeat =", "line 3: heartbeat has no value"},
		{"bad key = 1", "is not a valid key"},
		{"a..b = 1", "is not a valid key"},
	}
	for _, tc := range cases {
		_, _, err := confFromText(t, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

func TestConfUnknownKeyWarns(t *testing.T) {
	t.Parallel()
	cfg, warnings, err := confFromText(t, "heartbeat = 10\ncluster_formation.peer_discovery_backend = classic_config\n\nmanagement.rates_mode = none\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`rabbitmq.conf line 2: unknown key "cluster_formation.peer_discovery_backend" ignored`,
		`rabbitmq.conf line 4: unknown key "management.rates_mode" ignored`,
	}
	if !reflect.DeepEqual(warnings, want) || cfg.Heartbeat != 10*time.Second {
		t.Fatalf("warnings %q (heartbeat %v), want %q", warnings, cfg.Heartbeat, want)
	}
}

func writeConf(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rabbitmq.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfPrecedence: flags > env > file > defaults, and WARREN_CONFIG
// finds the file when --config is not given. Not parallel: it sets env.
func TestConfPrecedence(t *testing.T) {
	file := writeConf(t, "warren.data_dir = /from/file\nwarren.sync = interval\nheartbeat = 5\nwarren.max_queues = 7\n")
	t.Setenv("WARREN_CONFIG", file)
	t.Setenv("WARREN_SYNC", "always")
	t.Setenv("WARREN_MAX_QUEUES", "8")
	cfg, err := parseServeFlags([]string{"--max-queues", "9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConfigFile != file || cfg.DataDir != "/from/file" || cfg.Sync != "always" || cfg.MaxQueues != 9 || cfg.Heartbeat != 5*time.Second || cfg.HTTPAddr != ":15672" {
		t.Fatalf("config %+v", cfg)
	}
	// --config wins over WARREN_CONFIG; a bad value in it stops the start.
	bad := writeConf(t, "heartbeat = 5\nwarren.sync = never\n")
	_, err = parseServeFlags([]string{"--config", bad}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), bad+" line 2: warren.sync = never: want always or interval") {
		t.Fatalf("bad file: %v", err)
	}
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--config", bad}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "line 2") {
		t.Fatalf("run with a bad config file: exit %d, stderr %q", code, stderr.String())
	}
	if _, err := parseServeFlags([]string{"--config", filepath.Join(t.TempDir(), "missing.conf")}, io.Discard); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Fatalf("missing file: %v", err)
	}
	// A certificate turns on the TLS listeners on RabbitMQ's ports;
	// TLS settings that cannot work stop the start.
	t.Setenv("WARREN_CONFIG", "")
	cfg, err = parseServeFlags([]string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, io.Discard)
	if err != nil || cfg.AMQPSAddr != ":5671" || cfg.HTTPSAddr != ":15671" {
		t.Fatalf("with a certificate: %v, amqps %q https %q", err, cfg.AMQPSAddr, cfg.HTTPSAddr)
	}
	for _, args := range [][]string{
		{"--amqps-addr", ":5671"},
		{"--tls-cert", "c.pem"},
		{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-verify-peer"},
		{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--tls-fail-if-no-peer-cert"},
	} {
		if _, err := parseServeFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}

// TestConfFileEveryKey starts Warren from a file with every honoured key
// (listener addresses come from flags, which win, so that the test can
// use free ports) and checks the effects over real connections.
func TestConfFileEveryKey(t *testing.T) {
	pki := newTestPKI(t, "conf-ca")
	server := pki.issue("localhost", true, "server")
	client := pki.issue("ops", false, "client")
	data := t.TempDir()
	file := writeConf(t, `# Warren from a rabbitmq.conf
listeners.tcp.default = 5672
listeners.ssl.default = 5671
ssl_options.cacertfile = `+pki.CAFile+`
ssl_options.certfile   = `+server.CertFile+`
ssl_options.keyfile    = `+server.KeyFile+`
ssl_options.verify     = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_options.versions.1 = tlsv1.2
ssl_options.versions.2 = tlsv1.3
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = EXTERNAL
management.tcp.ip   = 127.0.0.1
management.tcp.port = 15672
management.ssl.ip   = 127.0.0.1
management.ssl.port = 15671
management.ssl.cacertfile = `+pki.CAFile+`
management.ssl.certfile   = `+server.CertFile+`
management.ssl.keyfile    = `+server.KeyFile+`
default_user  = ops
default_pass  = ops-secret
default_vhost = prod
loopback_users.guest = false
heartbeat   = 20
frame_max   = 65536
channel_max = 64
max_message_size = 1048576
vm_memory_high_watermark.relative = 0.9
disk_free_limit.absolute = 1MB
log.console.level = warning
warren.data_dir = `+data+`
warren.sync = interval
warren.cors_origins = https://app.example
warren.ws_allowed_origins = https://app.example
warren.token_secret = conf-secret
warren.max_connections = 50
warren.max_queues = 40
warren.tls_watch_interval = 30
`)
	cfg, err := parseServeFlags([]string{"--config", file, "--amqp-addr", "127.0.0.1:0", "--amqps-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 || cfg.AuthMechanisms != "PLAIN,EXTERNAL" || cfg.TLSVersions != "tlsv1.2,tlsv1.3" || cfg.DataDir != data || cfg.FrameMax != 65536 || cfg.ChannelMax != 64 || cfg.Heartbeat != 20*time.Second || cfg.LogLevel != "warning" {
		t.Fatalf("config %+v", cfg)
	}
	inst := startWarrenWith(t, data, func(c *Config) { *c = cfg })

	// default_user/default_pass/default_vhost made the first start's
	// administrator and vhost; channel_max and frame_max are offered.
	conn, err := amqp.DialTLS("amqps://ops:ops-secret@"+inst.AMQPSAddr()+"/prod", pki.clientTLS(nil))
	if err != nil {
		t.Fatalf("DialTLS to vhost prod: %v", err)
	}
	defer conn.Close()
	if conn.Config.ChannelMax != 64 || conn.Config.FrameSize != 65536 || conn.Config.Heartbeat != 10*time.Second {
		t.Fatalf("tuned channel_max %d frame_max %d heartbeat %v", conn.Config.ChannelMax, conn.Config.FrameSize, conn.Config.Heartbeat)
	}
	// verify_peer without fail_if_no_peer_cert: a certificate is optional,
	// and with one EXTERNAL works.
	ext, err := amqp.DialTLS_ExternalAuth("amqps://"+inst.AMQPSAddr()+"/prod", pki.clientTLS(&client))
	if err != nil {
		t.Fatalf("EXTERNAL as ops: %v", err)
	}
	ext.Close()
	// Without a certificate the connection is allowed but EXTERNAL is
	// not offered.
	if c, err := amqp.DialTLS_ExternalAuth("amqps://"+inst.AMQPSAddr()+"/prod", pki.clientTLS(nil)); !errors.Is(err, amqp.ErrSASL) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("EXTERNAL without a certificate: %v, want %v", err, amqp.ErrSASL)
	}
	// max_message_size is enforced.
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("conf-big", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ch.Publish("", "conf-big", false, false, amqp.Publishing{Body: make([]byte, 1<<20+1)})
	if _, _, err := ch.Get("conf-big", true); err == nil {
		t.Fatal("a message above max_message_size was accepted")
	}
	// guest does not exist (default_user replaced it): the plain listener
	// refuses it, and accepts ops.
	if c, err := amqp.Dial("amqp://guest:guest@" + inst.AMQPAddr() + "/prod"); err == nil {
		c.Close()
		t.Fatal("guest logged in although default_user is ops")
	}
	plain, err := amqp.Dial("amqp://ops:ops-secret@" + inst.AMQPAddr() + "/prod")
	if err != nil {
		t.Fatalf("plain AMQP as ops: %v", err)
	}
	plain.Close()
}

// FuzzParseConf: the parser never panics, accepts what it accepts no
// matter how the reader splits the input, and applying its entries never
// panics either.
func FuzzParseConf(f *testing.F) {
	for _, s := range []string{
		"listeners.tcp.default = 5672\n# c\nheartbeat = 30\n",
		"ssl_options.verify = verify_peer\r\nssl_options.fail_if_no_peer_cert = true",
		"loopback_users.guest = false\nloopback_users = none\n",
		"vm_memory_high_watermark.absolute = 2GB\ndisk_free_limit.absolute = 50MB",
		"management.ssl.port = 15671\nmanagement.tcp.ip = ::1\n",
		"= 1\nkey =\n##\n  a.b=c#d\n",
		"frame_max = 99999999999999999999\nmax_message_size = 1kB\n",
	} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, text string, chunk uint8) {
		whole, errWhole := parseConf(strings.NewReader(text))
		var r io.Reader = iotest.HalfReader(strings.NewReader(text))
		if chunk%2 == 1 {
			r = iotest.OneByteReader(strings.NewReader(text))
		}
		split, errSplit := parseConf(r)
		if (errWhole == nil) != (errSplit == nil) || !reflect.DeepEqual(whole, split) {
			t.Fatalf("whole: %v %v; split: %v %v", whole, errWhole, split, errSplit)
		}
		if errWhole != nil {
			if !strings.HasPrefix(errWhole.Error(), "line ") {
				t.Fatalf("error without a line: %v", errWhole)
			}
			return
		}
		for _, e := range whole {
			if !validConfKey(e.Key) || e.Value == "" || strings.ContainsAny(e.Value, "#\n") || e.Line < 1 {
				t.Fatalf("entry %+v", e)
			}
		}
		cfg := defaultConfig()
		if _, err := applyConf(&cfg, whole, "f"); err != nil && !strings.HasPrefix(err.Error(), "f line ") {
			t.Fatalf("apply error without a line: %v", err)
		}
	})
}
