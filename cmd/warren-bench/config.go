package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// headerLen is the number of body bytes used for the per-message
// instrumentation: run id (uint32, random per run), producer id (uint32),
// sequence number (uint64) and send timestamp (int64 nanoseconds on the run's
// monotonic clock), all big endian. The rest of the body is filler.
const headerLen = 24

// drainTimeout bounds how long the tool waits, after producers stop, for
// outstanding confirms, and how long the consumers may go without receiving
// anything while still missing messages; drainMax caps the whole drain when
// consumers are working through a backlog.
const (
	drainTimeout = 5 * time.Second
	drainMax     = 60 * time.Second
)

const (
	rpcReplyDirect = "direct"
	rpcReplyQueue  = "queue"

	directReplyTo = "amq.rabbitmq.reply-to"
	defaultPrefix = "warren-bench"
)

type config struct {
	url           string
	producers     int
	consumers     int
	queues        int
	size          int
	duration      time.Duration
	warmup        time.Duration
	rate          float64
	persistent    bool
	confirm       bool
	confirmWindow int
	manualAck     bool
	prefetch      int
	multiAck      int
	fanout        int
	rpc           bool
	rpcReply      string
	json          bool
	prefix        string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("warren-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "amqp://guest:guest@localhost:5672/", "AMQP URL of the broker")
	fs.IntVar(&c.producers, "producers", 1, "number of producers (RPC clients with --rpc), one connection each")
	fs.IntVar(&c.consumers, "consumers", 1, "number of consumers (RPC workers with --rpc), one connection each")
	fs.IntVar(&c.queues, "queues", 1, "number of queues <prefix>-<i>; producers and consumers are spread round-robin")
	fs.IntVar(&c.size, "size", 1024, fmt.Sprintf("message body size in bytes (>= %d)", headerLen))
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration (after warm-up)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up duration, excluded from rates and latency")
	fs.Float64Var(&c.rate, "rate", 0, "total publish rate in msg/s spread evenly over producers (0 = unlimited)")
	fs.BoolVar(&c.persistent, "persistent", false, "publish with delivery mode 2 and declare durable queues")
	fs.BoolVar(&c.confirm, "confirm", false, "use publisher confirms")
	fs.IntVar(&c.confirmWindow, "confirm-window", 1000, "max outstanding unconfirmed messages per producer")
	fs.BoolVar(&c.manualAck, "manual-ack", true, "consumers ack manually (false = auto-ack)")
	fs.IntVar(&c.prefetch, "prefetch", 100, "basic.qos prefetch count for manual-ack consumers (0 = unlimited)")
	fs.IntVar(&c.multiAck, "multi-ack", 1, "ack every Nth delivery with multiple=true (1 = ack each delivery)")
	fs.IntVar(&c.fanout, "fanout", 0, "publish to fanout exchange <prefix>-fanout bound to N queues (0 = off)")
	fs.BoolVar(&c.rpc, "rpc", false, "RPC mode: consumers are workers on queue <prefix>-rpc, producers are sequential clients")
	fs.StringVar(&c.rpcReply, "rpc-reply", rpcReplyDirect, "RPC reply path: direct (amq.rabbitmq.reply-to) or queue (exclusive server-named queue)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of text")
	fs.StringVar(&c.prefix, "prefix", defaultPrefix, "name prefix of the queues and exchange (to run several benches on one broker)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

func (c *config) validate() error {
	switch {
	case c.url == "":
		return errors.New("--url must not be empty")
	case c.prefix == "" || strings.HasPrefix(c.prefix, "amq."):
		return errors.New("--prefix must be non-empty and must not start with amq.")
	case c.producers < 1:
		return errors.New("--producers must be >= 1")
	case c.consumers < 1:
		return errors.New("--consumers must be >= 1")
	case c.queues < 1:
		return errors.New("--queues must be >= 1")
	case c.size < headerLen:
		return fmt.Errorf("--size must be >= %d (the body carries producer id, sequence number and timestamp)", headerLen)
	case c.duration <= 0:
		return errors.New("--duration must be > 0")
	case c.warmup < 0:
		return errors.New("--warmup must be >= 0")
	case c.rate < 0:
		return errors.New("--rate must be >= 0")
	case c.confirmWindow < 1:
		return errors.New("--confirm-window must be >= 1")
	case c.prefetch < 0:
		return errors.New("--prefetch must be >= 0")
	case c.multiAck < 1:
		return errors.New("--multi-ack must be >= 1")
	case c.manualAck && c.prefetch > 0 && c.multiAck > c.prefetch:
		return errors.New("--multi-ack must be <= --prefetch, or consumers would stall waiting for deliveries they never get")
	case c.fanout < 0:
		return errors.New("--fanout must be >= 0")
	case c.rpcReply != rpcReplyDirect && c.rpcReply != rpcReplyQueue:
		return fmt.Errorf("--rpc-reply must be %q or %q", rpcReplyDirect, rpcReplyQueue)
	case c.rpc && c.fanout > 0:
		return errors.New("--rpc and --fanout are mutually exclusive")
	case c.rpc && c.confirm:
		return errors.New("--confirm is not supported with --rpc")
	}
	if c.fanout > 0 {
		// One queue per fanout binding; every queue needs at least one consumer.
		c.queues = c.fanout
		if c.consumers < c.fanout {
			c.consumers = c.fanout
		}
	}
	if !c.rpc && c.consumers < c.queues {
		return fmt.Errorf("--consumers (%d) must be >= --queues (%d): every queue needs a consumer", c.consumers, c.queues)
	}
	return nil
}

func (c *config) mode() string {
	switch {
	case c.rpc:
		return "rpc"
	case c.fanout > 0:
		return "fanout"
	}
	return "queue"
}

func (c *config) queueName(i int) string { return fmt.Sprintf("%s-%d", c.prefix, i) }
func (c *config) rpcQueue() string       { return c.prefix + "-rpc" }
func (c *config) fanoutExchange() string { return c.prefix + "-fanout" }
