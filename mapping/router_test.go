package mapping_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warrenmq/warren/mapping"
)

// TestMain checks that nothing the core or its store started outlives
// Router.Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func publishN(t *testing.T, c *client, queue string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		c.publish(t, "", queue, fmt.Sprintf("m%d", i), mapping.Properties{})
	}
}

func seq(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i+1)
	}
	return out
}

func TestRoundRobinTwoConsumers(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.consume(t, "q", "a", true)
	c.consume(t, "q", "b", true)
	publishN(t, c, "q", 6)
	ds := c.sink.waitLen(t, 6)
	var got []string
	for _, d := range ds {
		got = append(got, d.ConsumerTag+":"+string(d.Message.Body))
	}
	wantStrings(t, "deliveries", got, []string{"a:m1", "b:m2", "a:m3", "b:m4", "a:m5", "b:m6"})
	if !slices.Equal(tags(ds), []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("delivery tags = %v", tags(ds))
	}

	// Two channels: the same alternation, each with its own tag sequence.
	q2 := c.channel()
	c.declareQueue(t, mapping.QueueSpec{Name: "q2"})
	c.consume(t, "q2", "x", true)
	q2.consume(t, "q2", "y", true)
	before := c.sink.len()
	publishN(t, c, "q2", 4)
	ds = c.sink.waitLen(t, before+2)[before:]
	ys := q2.sink.waitLen(t, 2)
	wantStrings(t, "channel 1", bodies(ds), []string{"m1", "m3"})
	wantStrings(t, "channel 2", bodies(ys), []string{"m2", "m4"})
	if !slices.Equal(tags(ys), []uint64{1, 2}) {
		t.Fatalf("channel 2 tags = %v, want [1 2]", tags(ys))
	}
}

func TestPerConsumerPrefetch(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.ch.SetPrefetch(2, false)
	c.consume(t, "q", "a", false)
	c.ch.SetPrefetch(1, false) // only for consumers created from now on
	c.consume(t, "q", "b", false)
	publishN(t, c, "q", 6)
	ds := c.sink.waitLen(t, 3)
	c.sink.quiet(t, 3)
	var got []string
	for _, d := range ds {
		got = append(got, d.ConsumerTag+":"+string(d.Message.Body))
	}
	wantStrings(t, "deliveries", got, []string{"a:m1", "b:m2", "a:m3"})
	if n := c.count(t, "q"); n != 3 {
		t.Fatalf("ready = %d, want 3", n)
	}
	// b's ack frees b only.
	if err := c.ch.Ack(2, false); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 4)
	c.sink.quiet(t, 4)
	if d := ds[3]; d.ConsumerTag != "b" || string(d.Message.Body) != "m4" || d.Tag != 4 {
		t.Fatalf("after ack: %+v %s, want b m4 tag 4", d, d.Message.Body)
	}
	// a's ack of both frees two slots of a.
	if err := c.ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 6)
	c.sink.quiet(t, 6)
	wantStrings(t, "rest", bodies(ds[4:]), []string{"m5", "m6"})
	if ds[4].ConsumerTag != "a" || ds[5].ConsumerTag != "a" {
		t.Fatalf("rest went to %s, %s; want a, a", ds[4].ConsumerTag, ds[5].ConsumerTag)
	}
}

func TestGlobalPrefetch(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q1"})
	c.declareQueue(t, mapping.QueueSpec{Name: "q2"})
	c.ch.SetPrefetch(3, true)
	c.consume(t, "q1", "a", false)
	c.consume(t, "q2", "b", false)
	publishN(t, c, "q1", 4)
	publishN(t, c, "q2", 4)
	ds := c.sink.waitLen(t, 3)
	c.sink.quiet(t, 3)
	var got []string
	for _, d := range ds {
		got = append(got, d.ConsumerTag+":"+string(d.Message.Body))
	}
	wantStrings(t, "deliveries", got, []string{"a:m1", "a:m2", "a:m3"})
	if n := c.count(t, "q2"); n != 4 {
		t.Fatalf("q2 ready = %d, want 4", n)
	}
	// Acking one of q1's frees one slot of the channel: q1 takes it back
	// at once (its settle dispatches first).
	if err := c.ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 4)
	c.sink.quiet(t, 4)
	if d := ds[3]; string(d.Message.Body) != "m4" || d.ConsumerTag != "a" {
		t.Fatalf("4th delivery %s:%s, want a:m4", d.ConsumerTag, d.Message.Body)
	}
	// q1 is empty now; acking everything lets q2 have three.
	if err := c.ch.Ack(0, true); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 7)
	c.sink.quiet(t, 7)
	got = nil
	for _, d := range ds[4:] {
		got = append(got, d.ConsumerTag+":"+string(d.Message.Body))
	}
	wantStrings(t, "after ack all", got, []string{"b:m1", "b:m2", "b:m3"})
	// Lifting the limit delivers the rest.
	c.ch.SetPrefetch(0, true)
	ds = c.sink.waitLen(t, 8)
	if string(ds[7].Message.Body) != "m4" {
		t.Fatalf("last = %s", ds[7].Message.Body)
	}
}

func TestAckMultiple(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.consume(t, "q", "a", false)
	publishN(t, c, "q", 5)
	c.sink.waitLen(t, 5)
	if err := c.ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []uint64{1, 2, 3} {
		wantErr(t, fmt.Sprintf("second ack of %d", tag), c.ch.Ack(tag, false), mapping.ErrPreconditionFailed)
	}
	// Closing the channel requeues only 4 and 5.
	c.ch.Close()
	d := c.channel()
	wantStrings(t, "requeued", d.drain(t, "q"), []string{"m4", "m5"})
}

func TestUnknownDeliveryTag(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	wantErr(t, "ack 1 on fresh channel", c.ch.Ack(1, false), mapping.ErrPreconditionFailed)
	publishN(t, c, "q", 2)
	d, _, _ := c.get(t, "q", false)
	if d.Tag != 1 {
		t.Fatalf("tag = %d", d.Tag)
	}
	wantErr(t, "ack 99", c.ch.Ack(99, false), mapping.ErrPreconditionFailed)
	wantErr(t, "ack 99 multiple", c.ch.Ack(99, true), mapping.ErrPreconditionFailed)
	wantErr(t, "nack 7", c.ch.Nack(7, false, true), mapping.ErrPreconditionFailed)
	if err := c.ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "double ack", c.ch.Ack(1, false), mapping.ErrPreconditionFailed)
	// A noAck get's tag is never ackable.
	d, _, _ = c.get(t, "q", true)
	wantErr(t, "ack of noAck get", c.ch.Ack(d.Tag, false), mapping.ErrPreconditionFailed)
}

func TestNackRequeueOriginalPosition(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	publishN(t, c, "q", 5)
	var got []mapping.Delivery
	for range 3 {
		d, _, ok := c.get(t, "q", false)
		if !ok {
			t.Fatal("empty")
		}
		got = append(got, d)
	}
	wantStrings(t, "got", bodies(got), []string{"m1", "m2", "m3"})
	if err := c.ch.Nack(got[1].Tag, false, true); err != nil { // m2 back
		t.Fatal(err)
	}
	d, rem, _ := c.get(t, "q", false)
	if string(d.Message.Body) != "m2" || !d.Redelivered || rem != 2 {
		t.Fatalf("after nack: %s redelivered=%v remaining=%d, want m2 true 2", d.Message.Body, d.Redelivered, rem)
	}
	// Nack multiple requeue of everything unacked: m1, m2, m3 return
	// ahead of m4, m5.
	if err := c.ch.Nack(d.Tag, true, true); err != nil {
		t.Fatal(err)
	}
	var order []string
	for {
		d, _, ok := c.get(t, "q", true)
		if !ok {
			break
		}
		order = append(order, fmt.Sprintf("%s/%v", d.Message.Body, d.Redelivered))
	}
	wantStrings(t, "order", order, []string{"m1/true", "m2/true", "m3/true", "m4/false", "m5/false"})
}

func TestNackRequeueToConsumer(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.ch.SetPrefetch(1, false)
	c.consume(t, "q", "a", false)
	publishN(t, c, "q", 3)
	ds := c.sink.waitLen(t, 1)
	if err := c.ch.Nack(ds[0].Tag, false, true); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 2)
	if d := ds[1]; string(d.Message.Body) != "m1" || !d.Redelivered || d.Tag != 2 {
		t.Fatalf("redelivery: %s redelivered=%v tag=%d", d.Message.Body, d.Redelivered, d.Tag)
	}
	// Nack without requeue drops it (no DLX): m2 follows.
	if err := c.ch.Nack(2, false, false); err != nil {
		t.Fatal(err)
	}
	ds = c.sink.waitLen(t, 3)
	if string(ds[2].Message.Body) != "m2" || ds[2].Redelivered {
		t.Fatalf("next: %s redelivered=%v", ds[2].Message.Body, ds[2].Redelivered)
	}
}

func TestRecover(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.consume(t, "q", "a", false)
	publishN(t, c, "q", 3)
	c.sink.waitLen(t, 3)
	if err := c.ch.Ack(2, false); err != nil {
		t.Fatal(err)
	}
	c.ch.Recover()
	ds := c.sink.waitLen(t, 5)
	c.sink.quiet(t, 5)
	got := ds[3:]
	wantStrings(t, "recovered", bodies(got), []string{"m1", "m3"})
	for i, d := range got {
		if !d.Redelivered || d.Tag != uint64(4+i) || d.ConsumerTag != "a" {
			t.Fatalf("recovered %d: tag=%d redelivered=%v ctag=%s", i, d.Tag, d.Redelivered, d.ConsumerTag)
		}
	}
	wantErr(t, "old tag after recover", c.ch.Ack(1, false), mapping.ErrPreconditionFailed)
	if err := c.ch.Ack(5, true); err != nil {
		t.Fatal(err)
	}
}

func TestChannelCloseRequeuesUnacked(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	other := c.channel()
	c.consume(t, "q", "a", false)
	publishN(t, c, "q", 4)
	c.sink.waitLen(t, 4)
	if err := c.ch.Ack(3, false); err != nil {
		t.Fatal(err)
	}
	c.ch.Close()
	c.ch.Close() // idempotent
	if n := other.count(t, "q"); n != 3 {
		t.Fatalf("ready after close = %d, want 3", n)
	}
	var order []string
	for {
		d, _, ok := other.get(t, "q", true)
		if !ok {
			break
		}
		order = append(order, fmt.Sprintf("%s/%v", d.Message.Body, d.Redelivered))
	}
	wantStrings(t, "requeued", order, []string{"m1/true", "m2/true", "m4/true"})
	// The closed channel's consumer is gone.
	info, err := other.ch.DeclareQueue(mapping.QueueSpec{Name: "q"}, true)
	if err != nil || info.Consumers != 0 {
		t.Fatalf("consumers = %d, err %v", info.Consumers, err)
	}
}

func TestExclusiveQueues(t *testing.T) {
	r := openRouter(t)
	owner := connect(t, r)
	other := connect(t, r)
	owner.declareQueue(t, mapping.QueueSpec{Name: "ex", Exclusive: true})
	info := owner.declareQueue(t, mapping.QueueSpec{Name: "", Exclusive: true, AutoDelete: true})
	if !strings.HasPrefix(info.Name, "amq.gen-") || len(info.Name) != len("amq.gen-")+22 {
		t.Fatalf("server-named queue %q", info.Name)
	}
	gen := info.Name

	_, err := other.ch.DeclareQueue(mapping.QueueSpec{Name: "ex", Exclusive: true}, false)
	wantErr(t, "declare from other conn", err, mapping.ErrResourceLocked)
	_, err = other.ch.DeclareQueue(mapping.QueueSpec{Name: "ex"}, true)
	wantErr(t, "passive declare from other conn", err, mapping.ErrResourceLocked)
	err = other.ch.Consume("ex", "", false, false, nil, func(string) {})
	wantErr(t, "consume from other conn", err, mapping.ErrResourceLocked)
	_, _, _, err = other.ch.Get("ex", false)
	wantErr(t, "get from other conn", err, mapping.ErrResourceLocked)
	_, err = other.ch.DeleteQueue("ex", false, false)
	wantErr(t, "delete from other conn", err, mapping.ErrResourceLocked)
	_, err = other.ch.PurgeQueue("ex")
	wantErr(t, "purge from other conn", err, mapping.ErrResourceLocked)
	wantErr(t, "bind from other conn", other.ch.BindQueue("ex", "amq.direct", "k", nil), mapping.ErrResourceLocked)
	// Publishing to it from another connection is allowed.
	if !other.publish(t, "", "ex", "hello", mapping.Properties{}) {
		t.Fatal("publish to exclusive queue from other conn not routed")
	}
	// A second channel of the owner may use it.
	second := owner.channel()
	if d, _, ok := second.get(t, "ex", true); !ok || string(d.Message.Body) != "hello" {
		t.Fatalf("owner's second channel get: ok=%v", ok)
	}

	owner.consume(t, "ex", "c", false)
	owner.publish(t, "", "ex", "x", mapping.Properties{})
	owner.sink.waitLen(t, 1)
	owner.conn.Close()
	for _, name := range []string{"ex", gen} {
		_, err = other.ch.DeclareQueue(mapping.QueueSpec{Name: name}, true)
		wantErr(t, "passive declare after owner closed: "+name, err, mapping.ErrNotFound)
	}
	// The name is free again.
	other.declareQueue(t, mapping.QueueSpec{Name: "ex", Exclusive: true})
	if n := other.count(t, "ex"); n != 0 {
		t.Fatalf("redeclared exclusive queue holds %d", n)
	}
}

func TestAutoDeleteAfterLastConsumer(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "ad", AutoDelete: true})
	// Never consumed: stays.
	publishN(t, c, "ad", 1)
	if n := c.count(t, "ad"); n != 1 {
		t.Fatalf("count = %d", n)
	}
	a := c.consume(t, "ad", "", false)
	if !strings.HasPrefix(a, "amq.ctag-") {
		t.Fatalf("generated tag %q", a)
	}
	c.consume(t, "ad", "b", true)
	c.ch.Cancel(a)
	info, err := c.ch.DeclareQueue(mapping.QueueSpec{Name: "ad"}, true)
	if err != nil || info.Consumers != 1 {
		t.Fatalf("after first cancel: %+v %v", info, err)
	}
	c.ch.Cancel("no-such-tag") // not an error
	c.ch.Cancel("b")
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Name: "ad"}, true)
	wantErr(t, "after last cancel", err, mapping.ErrNotFound)
	if len(c.sink.cancels()) != 0 {
		t.Fatalf("client cancels reported as server cancels: %v", c.sink.cancels())
	}
	// The unacked delivery of a (m1) has lost its queue; acking it is fine.
	if err := c.ch.Ack(1, false); err != nil {
		t.Fatalf("ack after queue deleted: %v", err)
	}
}

func TestDeleteQueueCancelsConsumers(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	c.consume(t, "q", "a", false)
	publishN(t, c, "q", 2)
	c.sink.waitLen(t, 2)
	publishN(t, c, "q", 0)
	n, err := c.ch.DeleteQueue("q", false, false)
	if err != nil || n != 0 {
		t.Fatalf("DeleteQueue = %d, %v", n, err)
	}
	wantStrings(t, "server cancels", c.sink.cancels(), []string{"a"})
	_, err = c.ch.DeclareQueue(mapping.QueueSpec{Name: "q"}, true)
	wantErr(t, "passive after delete", err, mapping.ErrNotFound)
	if err := c.ch.Ack(2, true); err != nil {
		t.Fatalf("ack of deleted queue's deliveries: %v", err)
	}
}

func TestPublishErrors(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	err := c.ch.Publish(&mapping.Message{Exchange: "missing", RoutingKey: "k", Body: []byte("x")}, nil).Err()
	wantErr(t, "publish to missing exchange", err, mapping.ErrNotFound)
	if !strings.Contains(err.Error(), "no exchange 'missing' in vhost '/'") {
		t.Fatalf("text %q", err.Error())
	}
	// Unroutable to an existing exchange: not an error, not routed.
	pubOut := c.ch.Publish(&mapping.Message{Exchange: "amq.direct", RoutingKey: "nowhere", Body: []byte("x")}, nil)
	ok, err := pubOut.Routed, pubOut.Err()
	if err != nil || ok {
		t.Fatalf("unroutable: ok=%v err=%v", ok, err)
	}
	err = c.ch.Publish(&mapping.Message{Exchange: "", RoutingKey: "q", Properties: mapping.Properties{UserID: "mallory"}}, nil).Err()
	wantErr(t, "wrong user id", err, mapping.ErrPreconditionFailed)
	err = c.ch.Publish(&mapping.Message{Exchange: "", RoutingKey: "q", Properties: mapping.Properties{Expiration: "soon"}}, nil).Err()
	wantErr(t, "bad expiration", err, mapping.ErrPreconditionFailed)
	err = c.ch.Consume("missing", "", false, false, nil, func(string) {})
	wantErr(t, "consume missing queue", err, mapping.ErrNotFound)
	_, _, _, err = c.ch.Get("missing", false)
	wantErr(t, "get missing queue", err, mapping.ErrNotFound)
	wantErr(t, "bind to missing exchange", func() error {
		c.declareQueue(t, mapping.QueueSpec{Name: "q"})
		return c.ch.BindQueue("q", "missing", "k", nil)
	}(), mapping.ErrNotFound)
}

func TestGetRemaining(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	if _, _, ok := c.get(t, "q", false); ok {
		t.Fatal("get on empty queue returned a message")
	}
	publishN(t, c, "q", 3)
	for i, want := range []int{2, 1, 0} {
		d, rem, ok := c.get(t, "q", i%2 == 0)
		if !ok || rem != want || string(d.Message.Body) != fmt.Sprintf("m%d", i+1) || d.ConsumerTag != "" || d.Redelivered {
			t.Fatalf("get %d: ok=%v remaining=%d body=%s ctag=%q redelivered=%v", i, ok, rem, d.Message.Body, d.ConsumerTag, d.Redelivered)
		}
		if d.Tag != uint64(i+1) {
			t.Fatalf("get %d: tag %d", i, d.Tag)
		}
	}
	if _, _, ok := c.get(t, "q", false); ok {
		t.Fatal("get after draining returned a message")
	}
	// The unacked get (m2, tag 2) returns on Recover.
	c.ch.Recover()
	d, rem, ok := c.get(t, "q", true)
	if !ok || string(d.Message.Body) != "m2" || !d.Redelivered || rem != 0 {
		t.Fatalf("after recover: ok=%v %s redelivered=%v rem=%d", ok, d.Message.Body, d.Redelivered, rem)
	}
}

func TestBackPressure(t *testing.T) {
	for _, noAck := range []bool{false, true} {
		t.Run(fmt.Sprintf("noAck=%v", noAck), func(t *testing.T) {
			r := openRouter(t)
			c := connect(t, r)
			c.declareQueue(t, mapping.QueueSpec{Name: "q"})
			c.consume(t, "q", "a", noAck)
			c.sink.setFull(true)
			publishN(t, c, "q", 10)
			// The refused delivery was still taken; nothing follows it.
			c.sink.quiet(t, 1)
			if n := c.count(t, "q"); n != 9 {
				t.Fatalf("ready while blocked = %d, want 9", n)
			}
			// Resume while still full: one more, then blocked again.
			c.ch.Resume()
			c.sink.quiet(t, 2)
			c.sink.setFull(false)
			c.ch.Resume()
			ds := c.sink.waitLen(t, 10)
			c.sink.quiet(t, 10)
			wantStrings(t, "delivered", bodies(ds), seq(10))
			if !slices.Equal(tags(ds), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
				t.Fatalf("tags = %v", tags(ds))
			}
			if n := c.count(t, "q"); n != 0 {
				t.Fatalf("ready after resume = %d", n)
			}
			// A Resume with nothing blocked is harmless.
			c.ch.Resume()
			if !noAck {
				if err := c.ch.Ack(10, true); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestBackPressureCapacity(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	other := c.channel()
	c.consume(t, "q", "a", false)
	other.consume(t, "q", "b", false)
	c.sink.mu.Lock()
	c.sink.fullAfter = 2
	c.sink.mu.Unlock()
	publishN(t, c, "q", 10)
	// a is blocked after its 2nd delivery; b takes everything else.
	a := c.sink.waitLen(t, 2)
	b := other.sink.waitLen(t, 8)
	c.sink.quiet(t, 2)
	wantStrings(t, "a", bodies(a), []string{"m1", "m3"})
	wantStrings(t, "b", bodies(b), []string{"m2", "m4", "m5", "m6", "m7", "m8", "m9", "m10"})
}

func TestExclusiveConsumer(t *testing.T) {
	r := openRouter(t)
	c := connect(t, r)
	c.declareQueue(t, mapping.QueueSpec{Name: "q"})
	if err := c.ch.Consume("q", "x", false, true, nil, func(string) {}); err != nil {
		t.Fatal(err)
	}
	other := c.channel()
	err := other.ch.Consume("q", "y", false, false, nil, func(string) {})
	wantErr(t, "consume beside an exclusive consumer", err, mapping.ErrAccessRefused)
	err = c.ch.Consume("q", "x", false, false, nil, func(string) {})
	if mapping.KindOf(err) != mapping.KindNotAllowed {
		t.Fatalf("reused tag: %v", err)
	}
	c.ch.Cancel("x")
	other.consume(t, "q", "y", false)
	err = c.ch.Consume("q", "z", false, true, nil, func(string) {})
	wantErr(t, "exclusive consume beside a consumer", err, mapping.ErrAccessRefused)
}

// Several publishers, consumers acking, nacking and closing at once: every
// message is acked exactly once in the end.
func TestConcurrentPublishConsumeAck(t *testing.T) {
	r := openRouter(t)
	setup := connect(t, r)
	setup.declareQueue(t, mapping.QueueSpec{Name: "q"})
	const publishers, perPublisher = 4, 250
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := setup.channel()
			for i := range perPublisher {
				c.ch.Publish(&mapping.Message{RoutingKey: "q", Body: []byte(fmt.Sprintf("%d-%d", p, i))}, nil)
			}
		}()
	}
	var mu sync.Mutex
	acked := map[string]int{}
	stop := make(chan struct{})
	var cwg sync.WaitGroup
	for k := range 3 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for round := 0; ; round++ {
				c := setup.channel()
				c.ch.SetPrefetch(5, k == 0)
				c.ch.Consume("q", "", false, false, nil, func(string) {})
				for i := 0; i < 40; i++ {
					select {
					case <-stop:
						c.ch.Close()
						return
					default:
					}
					ds := c.sink.take()
					for j, d := range ds {
						switch {
						case (j+round)%7 == 3:
							c.ch.Nack(d.Tag, false, true)
						default:
							if c.ch.Ack(d.Tag, false) == nil {
								mu.Lock()
								acked[string(d.Message.Body)]++
								mu.Unlock()
							}
						}
					}
					time.Sleep(time.Millisecond)
				}
				c.ch.Close() // requeues what it still holds
			}
		}()
	}
	wg.Wait()
	eventually(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == publishers*perPublisher
	})
	close(stop)
	cwg.Wait()
	for k, n := range acked {
		if n != 1 {
			t.Fatalf("%s acked %d times", k, n)
		}
	}
	if n := setup.count(t, "q"); n != 0 {
		t.Fatalf("%d left in queue", n)
	}
}
