package mapping

import (
	"maps"
	"time"
)

// deadLetter is a message leaving a queue for its dead-letter exchange.
// It is collected under Queue.mu and published after the lock is released,
// because publishing takes VHost.mu, which comes first in the lock order.
type deadLetter struct {
	msg    *Message
	reason string // rejected, expired, maxlen
}

func (q *Queue) deadLetterLocked(m *qmsg, reason string) {
	if q.policy.hasDLX {
		q.vh.r.stats.DeadLettered.Add(1)
		q.dead = append(q.dead, deadLetter{msg: m.msg, reason: reason})
	}
}

// unlockAndDeadLetter releases q.mu and publishes what was dead-lettered
// while it was held.
func (q *Queue) unlockAndDeadLetter() { q.unlockThenDeadLetter(nil) }

// unlockThenDeadLetter is unlockAndDeadLetter that runs between, when not
// nil, after q.mu is released and before the dead letters are published:
// a publish hands its store reservation on there, so that it never holds
// one while a dead letter's publish waits for store room.
func (q *Queue) unlockThenDeadLetter(between func()) {
	dead := q.dead
	q.dead = nil
	q.mu.Unlock()
	if between != nil {
		between()
	}
	for _, d := range dead {
		q.vh.publishDeadLetter(q, d)
	}
}

// publishDeadLetter republishes a dead message with RabbitMQ's x-death
// bookkeeping to the queue's dead-letter exchange.
func (vh *VHost) publishDeadLetter(q *Queue, d deadLetter) {
	old := d.msg
	m := &Message{Exchange: q.policy.dlx, RoutingKey: old.RoutingKey, Body: old.Body, Properties: old.Properties}
	if q.policy.hasDLRK {
		m.RoutingKey = q.policy.dlrk
	}
	h := maps.Clone(old.Properties.Headers)
	if h == nil {
		h = Table{}
	}
	keys := []any{old.RoutingKey}
	if cc, ok := h["CC"].([]any); ok {
		for _, k := range cc {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
	}
	entry := Table{
		"count":        int64(1),
		"reason":       d.reason,
		"queue":        q.name,
		"time":         time.Now().UTC().Truncate(time.Second),
		"exchange":     old.Exchange,
		"routing-keys": keys,
	}
	if exp := old.Properties.Expiration; exp != "" {
		entry["original-expiration"] = exp
		m.Properties.Expiration = ""
		m.Properties.Flags &^= FlagExpiration
	}
	var deaths []any
	if prev, ok := h["x-death"].([]any); ok {
		for _, e := range prev {
			t, ok := e.(Table)
			if ok && t["queue"] == q.name && t["reason"] == d.reason {
				n, _ := asInt(t["count"])
				entry["count"] = n + 1
				if rk, ok := t["routing-keys"]; ok {
					entry["routing-keys"] = rk
				}
				if ex, ok := t["exchange"]; ok {
					entry["exchange"] = ex
				}
				continue
			}
			deaths = append(deaths, e)
		}
	}
	h["x-death"] = append([]any{entry}, deaths...)
	if _, ok := h["x-first-death-reason"]; !ok {
		h["x-first-death-reason"] = d.reason
		h["x-first-death-queue"] = q.name
		h["x-first-death-exchange"] = old.Exchange
	}
	m.Properties.Headers = h
	m.Properties.Flags |= FlagHeaders
	m.ts = time.Now().UnixNano()

	vh.mu.RLock()
	e, ok := vh.exchanges[m.Exchange]
	if !ok {
		vh.mu.RUnlock()
		return
	}
	targets := vh.routeLocked(e, m)
	vh.mu.RUnlock()
	prepareRecord(m, targets)
	prepareForward(m, targets)
	for _, t := range targets {
		if t == q && d.reason != "rejected" && !deathsInclude(h, "rejected") {
			continue // a dead-letter cycle without rejection: RabbitMQ drops it
		}
		t.enqueueDeadLetter(m) // dead letters are not flow-controlled
	}
}

func deathsInclude(h Table, reason string) bool {
	deaths, _ := h["x-death"].([]any)
	for _, e := range deaths {
		if t, ok := e.(Table); ok && t["reason"] == reason {
			return true
		}
	}
	return false
}
