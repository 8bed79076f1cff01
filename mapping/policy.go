package mapping

import (
	"strconv"
	"time"
)

// queuePolicy is what a queue's x- arguments ask for, parsed once at
// declare time (validateQueueArgs has already checked the types).
type queuePolicy struct {
	ttl           int64 // x-message-ttl in ms; -1 = none
	maxLen        int64 // -1 = none
	maxBytes      int64 // -1 = none
	overflow      string
	dlx           string
	hasDLX        bool
	dlrk          string
	hasDLRK       bool
	maxPriority   uint8
	expires       time.Duration // x-expires; 0 = none
	singleActive  bool          // x-single-active-consumer
	deliveryLimit int64         // x-delivery-limit; 0 = none
	// persistAll: a quorum queue stores every message, whatever its
	// delivery mode, as RabbitMQ's quorum queues do ("per message
	// persistence: always"), so transient ones survive a restart too.
	persistAll bool
}

func parsePolicy(args Table) queuePolicy {
	p := queuePolicy{ttl: -1, maxLen: -1, maxBytes: -1, overflow: "drop-head"}
	for k, v := range args {
		n, isInt := asInt(v)
		s, isStr := v.(string)
		switch {
		case k == "x-message-ttl" && isInt:
			p.ttl = n
		case k == "x-max-length" && isInt:
			p.maxLen = n
		case k == "x-max-length-bytes" && isInt:
			p.maxBytes = n
		case k == "x-overflow" && isStr:
			p.overflow = s
		case k == "x-dead-letter-exchange" && isStr:
			p.dlx, p.hasDLX = s, true
		case k == "x-dead-letter-routing-key" && isStr:
			p.dlrk, p.hasDLRK = s, true
		case k == "x-max-priority" && isInt:
			p.maxPriority = uint8(min(n, 255))
		case k == "x-single-active-consumer":
			p.singleActive, _ = v.(bool)
		case k == "x-delivery-limit" && isInt:
			p.deliveryLimit = n
		case k == "x-expires" && isInt:
			p.expires = time.Duration(n) * time.Millisecond
		case k == "x-queue-type":
			p.persistAll = s == QueueTypeQuorum
		}
	}
	return p
}

// expiry computes when a message enqueued at now (unix ns) expires: the
// earlier of the queue's TTL and the message's own expiration; 0 = never.
func (p *queuePolicy) expiry(m *Message, now int64) int64 {
	ttl := p.ttl
	if e := m.Properties.Expiration; e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err == nil && n >= 0 && (ttl < 0 || n < ttl) {
			ttl = n
		}
	}
	if ttl < 0 {
		return 0
	}
	return max(now+ttl*int64(time.Millisecond), 1)
}

// overLimit reports whether n ready messages of bytes body bytes exceed
// max-length(-bytes).
func (p *queuePolicy) overLimit(n int, bytes int64) bool {
	return (p.maxLen >= 0 && int64(n) > p.maxLen) || (p.maxBytes >= 0 && bytes > p.maxBytes)
}

// wouldOverflow reports whether adding m to n ready messages of bytes
// body bytes would exceed a limit.
func (p *queuePolicy) wouldOverflow(n int, bytes int64, m *Message) bool {
	return (p.maxLen >= 0 && int64(n)+1 > p.maxLen) || (p.maxBytes >= 0 && bytes+int64(len(m.Body)) > p.maxBytes)
}
