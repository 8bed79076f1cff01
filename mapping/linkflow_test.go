package mapping_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// TestLinkFlowHoldsRemotePublishers is
// TestFlowHoldsPublishersOnlyWhileConsumersDrain for a publisher on n2
// into a queue homed on n1: the home decides (its answers to the
// forwards carry the decision) and n2 holds the publishing channel as a
// local queue would, only while the queue's consumers drain it and none
// of them is on the publisher's own connection; once the home drained,
// the hold ends and the next publishes are not held.
func TestLinkFlowHoldsRemotePublishers(t *testing.T) {
	rs := openClusterRouters(t, 2)
	for i, tc := range []struct {
		name     string
		slowSink bool // the consumer's sink is full: it drains at its socket's pace
		ownConn  bool // the consumer is on the publisher's connection (on n2)
		wantHeld bool
	}{
		{"consumer at its prefetch limit", false, false, false},
		{"consumer on a slow socket", true, false, true},
		{"consumer on the publisher's connection", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("link-flow-%d", i)
			homedOn(t, rs, 0, mapping.QueueSpec{Name: name})
			pub := connect(t, rs[1])
			cons := connect(t, rs[0])
			if tc.ownConn {
				cons = pub.channel()
			}
			if tc.slowSink {
				cons.sink.setFull(true)
			} else {
				cons.ch.SetPrefetch(10, false)
			}
			cons.consume(t, name, "c", false)
			for i := range 20010 {
				pub.publish(t, "", name, fmt.Sprint(i), mapping.Properties{})
			}
			// Its answer, the home's decision with 20,010 or more
			// messages in the queue, is in before its confirm.
			if !pub.publishConfirmed(t, "", name, "last", mapping.Properties{}) {
				t.Fatal("publish not confirmed")
			}
			if pub.ch.FlowHeld() {
				t.Fatal("FlowHeld() before the home's decision was known")
			}
			pub.publish(t, "", name, "probe", mapping.Properties{})
			if held := pub.ch.FlowHeld(); held != tc.wantHeld {
				t.Fatalf("FlowHeld() = %v after 20,012 messages, want %v (consumer got %d)", held, tc.wantHeld, cons.sink.len())
			}
			if !tc.wantHeld {
				return
			}
			// The consumer catches up: the held publisher is let go once
			// the home drained, and is not held again.
			cons.sink.setFull(false)
			cons.ch.Resume()
			eventually(t, 10*time.Second, func() bool { return cons.count(t, name) == 0 })
			pub.ch.WaitFlow(nil)
			if pub.ch.FlowHeld() {
				t.Fatal("still held after WaitFlow")
			}
			if !pub.publishConfirmed(t, "", name, "after", mapping.Properties{}) {
				t.Fatal("publish after the drain not confirmed")
			}
			pub.publish(t, "", name, "after2", mapping.Properties{})
			if pub.ch.FlowHeld() {
				t.Fatal("FlowHeld() after the home drained")
			}
		})
	}
}

// BenchmarkLinkFlowBacklog: a publisher that waits as the AMQP front does
// (WaitFlow whenever FlowHeld) publishes 60,000 messages into a queue
// homed on n1 whose consumer drains slower than it publishes (5
// messages a millisecond at most); once from n1 (local), once from n2
// (every message forwarded to n1). It reports the largest backlog seen at
// the home for each, sampled every 500 messages, and other/home: close to
// 1 when the home's flow control holds the remote publisher as it holds
// a local one.
func BenchmarkLinkFlowBacklog(b *testing.B) {
	rs := openClusterRouters(b, 2)
	open := func(r *mapping.Router, sink mapping.Sink) *mapping.Channel {
		conn, err := r.Connect("guest", "/", mapping.ConnInfo{Name: b.Name()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(conn.Close)
		return conn.OpenChannel(1, sink)
	}
	const n = 60000
	spec := mapping.QueueSpec{Name: "link-flow-bench"}
	home := open(rs[0], newFakeSink())
	if _, err := home.DeclareQueue(spec, false); err != nil {
		b.Fatal(err)
	}
	if err := rs[1].AdoptQueueForTest("/", spec, "n1"); err != nil {
		b.Fatal(err)
	}
	backlog := func() int {
		info, err := home.DeclareQueue(spec, true)
		if err != nil {
			b.Fatal(err)
		}
		return info.Messages
	}
	round := func(from *mapping.Router) int {
		sink := newFakeSink()
		sink.fullAfter = 5
		cons := open(rs[0], sink)
		if err := cons.Consume(spec.Name, "drain", true, false, nil, func(string) {}); err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				sink.take()
				cons.Resume()
			}
		}()
		pub := open(from, newFakeSink())
		peak := 0
		for i := range n {
			o := pub.Publish(&mapping.Message{RoutingKey: spec.Name, Body: []byte("m")}, nil)
			if err := o.Err(); err != nil {
				b.Fatal(err)
			}
			if pub.FlowHeld() {
				pub.WaitFlow(nil)
			}
			if i%500 == 0 {
				peak = max(peak, backlog())
			}
		}
		close(stop)
		<-drained
		cons.Close()
		pub.Close()
		if _, err := home.PurgeQueue(spec.Name); err != nil {
			b.Fatal(err)
		}
		return peak
	}
	var local, remote int
	for b.Loop() {
		local = max(local, round(rs[0]))
		remote = max(remote, round(rs[1]))
	}
	b.ReportMetric(float64(local), "home-peak")
	b.ReportMetric(float64(remote), "other-peak")
	b.ReportMetric(float64(remote)/float64(local), "other/home")
}
