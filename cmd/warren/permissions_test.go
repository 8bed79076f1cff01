package main

// The permission matrix over AMQP: a user created through the management
// API with narrow configure/write/read regexps, and each AMQP operation
// allowed or refused as RabbitMQ decides it. Also: no permission on a
// vhost → 530 at connection.open, and guest refused from a non-loopback
// address on AMQP and HTTP.

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	a := newMgmtClient(t, inst)
	a.want(201, "PUT", "/api/users/pu", map[string]any{"password": "pw", "tags": ""}, nil)
	a.want(201, "PUT", "/api/permissions/%2F/pu", map[string]any{"configure": "^cfg-", "write": "^w-", "read": "^r-"}, nil)

	// Objects the test user works on, made by guest.
	admin, err := amqp.Dial(amqpURL(inst))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ach, err := admin.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"r-q", "w-q", "other-q", "cfg-old"} {
		if _, err := ach.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []string{"w-ex", "r-ex"} {
		if err := ach.ExchangeDeclare(x, "fanout", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ach.Publish("", "r-q", false, false, amqp.Publishing{Body: []byte("m")}); err != nil {
		t.Fatal(err)
	}

	conn, err := amqp.Dial("amqp://pu:pw@" + inst.AMQPAddr() + "/")
	if err != nil {
		t.Fatalf("pu with permissions on / could not connect: %v", err)
	}
	defer conn.Close()

	cases := []struct {
		name    string
		allowed bool
		denied  string // text the 403 must contain
		op      func(ch *amqp.Channel) error
	}{
		{"declare queue cfg-q (configure)", true, "", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("cfg-q", false, false, false, false, nil)
			return err
		}},
		{"declare queue x-q (configure)", false, "configure access to queue 'x-q' in vhost '/' refused for user 'pu'", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("x-q", false, false, false, false, nil)
			return err
		}},
		{"declare server-named queue (amq.gen-… needs configure)", false, "configure access to queue 'amq.gen-", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("", false, false, true, false, nil)
			return err
		}},
		{"declare exchange cfg-ex (configure)", true, "", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("cfg-ex", "direct", false, false, false, false, nil)
		}},
		{"declare exchange w-ex2 (configure)", false, "configure access to exchange 'w-ex2'", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("w-ex2", "direct", false, false, false, false, nil)
		}},
		{"delete queue cfg-old (configure)", true, "", func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete("cfg-old", false, false, false)
			return err
		}},
		{"delete queue other-q (configure)", false, "configure access to queue 'other-q'", func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete("other-q", false, false, false)
			return err
		}},
		{"delete exchange r-ex (configure)", false, "configure access to exchange 'r-ex'", func(ch *amqp.Channel) error {
			return ch.ExchangeDelete("r-ex", false, false)
		}},
		{"publish to w-ex (write on the exchange)", true, "", func(ch *amqp.Channel) error {
			return permPublishAndSync(ch, "w-ex")
		}},
		{"publish to r-ex (write on the exchange)", false, "write access to exchange 'r-ex'", func(ch *amqp.Channel) error {
			return permPublishAndSync(ch, "r-ex")
		}},
		{"publish to the default exchange (write on amq.default)", false, "write access to exchange 'amq.default'", func(ch *amqp.Channel) error {
			return permPublishAndSync(ch, "")
		}},
		{"consume r-q (read on the queue)", true, "", func(ch *amqp.Channel) error {
			_, err := ch.Consume("r-q", "", false, false, false, false, nil)
			return err
		}},
		{"consume w-q (read on the queue)", false, "read access to queue 'w-q'", func(ch *amqp.Channel) error {
			_, err := ch.Consume("w-q", "", false, false, false, false, nil)
			return err
		}},
		{"get r-q (read)", true, "", func(ch *amqp.Channel) error {
			_, _, err := ch.Get("r-q", true)
			return err
		}},
		{"get cfg-q (read)", false, "read access to queue 'cfg-q'", func(ch *amqp.Channel) error {
			_, _, err := ch.Get("cfg-q", true)
			return err
		}},
		{"purge r-q (read)", true, "", func(ch *amqp.Channel) error {
			_, err := ch.QueuePurge("r-q", false)
			return err
		}},
		{"purge w-q (read)", false, "read access to queue 'w-q'", func(ch *amqp.Channel) error {
			_, err := ch.QueuePurge("w-q", false)
			return err
		}},
		{"bind w-q to r-ex (write queue, read exchange)", true, "", func(ch *amqp.Channel) error {
			return ch.QueueBind("w-q", "", "r-ex", false, nil)
		}},
		{"bind r-q to r-ex (write on the queue)", false, "write access to queue 'r-q'", func(ch *amqp.Channel) error {
			return ch.QueueBind("r-q", "", "r-ex", false, nil)
		}},
		{"bind w-q to w-ex (read on the exchange)", false, "read access to exchange 'w-ex'", func(ch *amqp.Channel) error {
			return ch.QueueBind("w-q", "", "w-ex", false, nil)
		}},
		{"unbind w-q from r-ex (same as bind)", true, "", func(ch *amqp.Channel) error {
			return ch.QueueUnbind("w-q", "", "r-ex", nil)
		}},
		{"bind exchange w-ex to r-ex (write dest, read source)", true, "", func(ch *amqp.Channel) error {
			return ch.ExchangeBind("w-ex", "", "r-ex", false, nil)
		}},
		{"bind exchange r-ex to w-ex", false, "write access to exchange 'r-ex'", func(ch *amqp.Channel) error {
			return ch.ExchangeBind("r-ex", "", "w-ex", false, nil)
		}},
	}
	for _, tc := range cases {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("%s: open channel: %v", tc.name, err)
		}
		err = tc.op(ch)
		if tc.allowed {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			ch.Close()
			continue
		}
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused || !strings.Contains(ae.Reason, tc.denied) {
			t.Errorf("%s: got %v, want 403 ACCESS_REFUSED containing %q", tc.name, err, tc.denied)
		}
	}
	if conn.IsClosed() {
		t.Fatal("a refused operation closed the connection; it must close only the channel")
	}

	// No permission on the vhost: 530 at connection.open.
	a.want(201, "PUT", "/api/users/np", map[string]any{"password": "pw", "tags": ""}, nil)
	_, err = amqp.Dial("amqp://np:pw@" + inst.AMQPAddr() + "/")
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotAllowed {
		t.Errorf("connect without permissions on the vhost: %v, want 530 NOT_ALLOWED", err)
	}
	// Permission changes apply to open connections.
	a.want(204, "PUT", "/api/permissions/%2F/pu", map[string]any{"configure": "", "write": "", "read": ""}, nil)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("cfg-q2", false, false, false, false, nil); !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Errorf("declare after permissions were cleared: %v, want 403", err)
	}
}

// permPublishAndSync publishes and then does a synchronous call, so that an
// asynchronous channel close for the publish is seen.
func permPublishAndSync(ch *amqp.Channel, exchange string) error {
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Publish(exchange, "k", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		return err
	}
	if _, err := ch.QueueDeclarePassive("r-q", false, false, false, false, nil); err != nil {
		select {
		case e := <-closed:
			if e != nil {
				return e
			}
		case <-time.After(2 * time.Second):
		}
		return err
	}
	return nil
}

// permNonLoopbackIP returns an IPv4 address of this machine that is not
// loopback, or nil.
func permNonLoopbackIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP
		}
	}
	return nil
}

// TestGuestOnlyFromLoopback: guest/guest is refused from another address,
// on AMQP and on the HTTP API, while another administrator is accepted.
func TestGuestOnlyFromLoopback(t *testing.T) {
	ip := permNonLoopbackIP()
	if ip == nil {
		t.Skip("this machine has no non-loopback IPv4 address to connect from")
	}
	t.Parallel()
	cfg := defaultConfig()
	cfg.AMQPAddr = net.JoinHostPort(ip.String(), "0")
	cfg.HTTPAddr = net.JoinHostPort(ip.String(), "0")
	cfg.DataDir = t.TempDir()
	inst, err := startInstance(cfg, permQuietLogger(t))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { stopWarren(t, inst) })

	_, err = amqp.Dial("amqp://guest:guest@" + inst.AMQPAddr() + "/")
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Errorf("guest over AMQP from %s: %v, want 403 ACCESS_REFUSED", ip, err)
	}
	a := &mgmtClient{t: t, base: "http://" + inst.HTTPAddr(), user: "guest", pass: "guest"}
	reason := a.wantError(http.StatusUnauthorized, "not_authorised", "GET", "/api/overview", nil)
	if !strings.Contains(reason, "localhost") {
		t.Errorf("reason %q does not say guest is loopback-only", reason)
	}
	// Another administrator (created directly in the core) is accepted.
	if err := inst.router.PutUser("root", "pw", "", []string{"administrator"}); err != nil {
		t.Fatal(err)
	}
	a.as("root", "pw").want(200, "GET", "/api/overview", nil, nil)
}

func permQuietLogger(testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
