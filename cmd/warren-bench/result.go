package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

type latency struct {
	Samples uint64  `json:"samples"`
	P50us   float64 `json:"p50_us"`
	P90us   float64 `json:"p90_us"`
	P99us   float64 `json:"p99_us"`
	MaxUs   float64 `json:"max_us"`
	MeanUs  float64 `json:"mean_us"`
}

// result is the outcome of one run; it is also the --json schema.
// In RPC mode sent counts calls, received counts replies and lost counts
// calls that got no reply.
type result struct {
	Mode          string  `json:"mode"`
	Producers     int     `json:"producers"`
	Consumers     int     `json:"consumers"`
	Queues        int     `json:"queues"`
	Size          int     `json:"size"`
	Persistent    bool    `json:"persistent"`
	Confirm       bool    `json:"confirm"`
	ConfirmWindow int     `json:"confirm_window,omitempty"`
	ManualAck     bool    `json:"manual_ack"`
	Prefetch      int     `json:"prefetch"`
	MultiAck      int     `json:"multi_ack"`
	Fanout        int     `json:"fanout"`
	RPCReply      string  `json:"rpc_reply,omitempty"`
	TargetRate    float64 `json:"target_rate"`
	WarmupS       float64 `json:"warmup_s"`
	DurationS     float64 `json:"duration_s"` // measured window actually used

	Sent       uint64   `json:"sent"`
	Confirmed  uint64   `json:"confirmed"`
	Nacked     uint64   `json:"nacked"`
	Received   uint64   `json:"received"`
	Lost       uint64   `json:"lost"`
	Duplicated uint64   `json:"duplicated"`
	Foreign    uint64   `json:"foreign,omitempty"` // deliveries not produced by this run
	SentRate   float64  `json:"sent_per_s"`
	RecvRate   float64  `json:"received_per_s"`
	Latency    latency  `json:"latency"`
	Errors     []string `json:"errors,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`

	sentWindow uint64
	recvWindow uint64
}

func (r *runner) newResult() *result {
	c := r.cfg
	res := &result{
		Mode: c.mode(), Producers: c.producers, Consumers: c.consumers, Queues: c.queues,
		Size: c.size, Persistent: c.persistent, Confirm: c.confirm, ManualAck: c.manualAck,
		Prefetch: c.prefetch, MultiAck: c.multiAck, Fanout: c.fanout, TargetRate: c.rate,
		WarmupS: c.warmup.Seconds(),
	}
	if c.confirm {
		res.ConfirmWindow = c.confirmWindow
	}
	if c.rpc {
		res.RPCReply = c.rpcReply
		res.Queues = 1
	}
	return res
}

func (res *result) finish(r *runner, h *histogram) {
	res.DurationS = r.measured()
	if res.DurationS > 0 {
		res.SentRate = float64(res.sentWindow) / res.DurationS
		res.RecvRate = float64(res.recvWindow) / res.DurationS
	}
	res.Latency = latency{
		Samples: h.n,
		P50us:   durMicros(h.percentile(50)),
		P90us:   durMicros(h.percentile(90)),
		P99us:   durMicros(h.percentile(99)),
		MaxUs:   durMicros(h.percentile(100)),
		MeanUs:  h.mean() / float64(time.Microsecond),
	}
	r.errMu.Lock()
	res.Errors = append(res.Errors, r.errs...)
	res.Warnings = append(res.Warnings, r.warns...)
	r.errMu.Unlock()
}

func fmtDur(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func (res *result) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return enc.Encode(res)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s: producers=%d consumers=%d queues=%d size=%d persistent=%v confirm=%v manual-ack=%v prefetch=%d multi-ack=%d",
		res.Mode, res.Producers, res.Consumers, res.Queues, res.Size, res.Persistent, res.Confirm, res.ManualAck, res.Prefetch, res.MultiAck)
	if res.Fanout > 0 {
		fmt.Fprintf(&b, " fanout=%d", res.Fanout)
	}
	if res.RPCReply != "" {
		fmt.Fprintf(&b, " rpc-reply=%s", res.RPCReply)
	}
	if res.TargetRate > 0 {
		fmt.Fprintf(&b, " rate=%g", res.TargetRate)
	}
	fmt.Fprintf(&b, "\nmeasured %.2fs after %.2fs warm-up\n", res.DurationS, res.WarmupS)
	sentLabel, recvLabel := "sent", "received"
	if res.Mode == "rpc" {
		sentLabel, recvLabel = "calls", "replies"
	}
	fmt.Fprintf(&b, "%-11s %d (%.0f/s)\n", sentLabel, res.Sent, res.SentRate)
	if res.Confirm {
		fmt.Fprintf(&b, "%-11s %d\n", "confirmed", res.Confirmed)
		fmt.Fprintf(&b, "%-11s %d\n", "nacked", res.Nacked)
	}
	fmt.Fprintf(&b, "%-11s %d (%.0f/s)\n", recvLabel, res.Received, res.RecvRate)
	l := res.Latency
	fmt.Fprintf(&b, "%-11s p50=%s p90=%s p99=%s max=%s mean=%s (%d samples)\n", "latency",
		fmtDur(l.P50us), fmtDur(l.P90us), fmtDur(l.P99us), fmtDur(l.MaxUs), fmtDur(l.MeanUs), l.Samples)
	fmt.Fprintf(&b, "%-11s %d\n", "lost", res.Lost)
	fmt.Fprintf(&b, "%-11s %d\n", "duplicated", res.Duplicated)
	if res.Foreign > 0 {
		fmt.Fprintf(&b, "%-11s %d (deliveries not produced by this run: another warren-bench on the same queues?)\n", "foreign", res.Foreign)
	}
	for _, wmsg := range res.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wmsg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
