package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestBrowserAMQPExample: headless Chromium loads /examples/amqp.html,
// which speaks AMQP 0-9-1 over /ws/amqp with @cloudamqp/amqp-client. The
// page connects, declares and binds a queue, consumes with manual acks,
// publishes with confirms (a text message and 1 MiB), and closes; an
// amqp091-go client on the TCP port publishes to it and checks the 1 MiB
// body; the management API lists the page's connection with its protocol.
func TestBrowserAMQPExample(t *testing.T) {
	inst := startWarren(t, "")
	base := "http://" + inst.HTTPAddr()
	p := newUIPage(t, base)
	p.do("open the AMQP example and connect",
		chromedp.Navigate(base+"/examples/amqp.html"),
		chromedp.WaitVisible(chromedp.ID("connect")),
		uiClick("#connect"),
	)
	p.text("#status", "connected", func(s string) bool { return s == "connected" })
	if got := wsAMQPProtocols(t, inst); countOf(got, "AMQP 0-9-1/WebSocket") != 1 {
		t.Errorf("management API protocols %q, want one AMQP 0-9-1/WebSocket", got)
	}

	p.do("consume", uiSet("#sub-key", "browser.#"), uiClick("#subscribe"))
	p.contains("#sub-info", "consuming from", "bound to amq.topic with browser.#")

	// A Go client on the TCP port sees the page's 1 MiB message.
	_, ch := wsAMQP(t, inst)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "browser.big", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	bigs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("amq.topic", "browser.from-go", false, false, amqp.Publishing{Body: []byte("hello from Go")}); err != nil {
		t.Fatal(err)
	}
	p.contains("#messages", "browser.from-go", "hello from Go")

	p.do("publish", uiSet("#pub-key", "browser.info"), uiSet("#pub-body", "hello over AMQP"), uiClick("#publish"))
	p.contains("#pub-result", "confirmed: publish #1")
	p.contains("#messages", "browser.info", "hello over AMQP")

	p.do("publish 1 MiB", uiSet("#pub-key", "browser.big"), uiSet("#pub-size", "1048576"), uiClick("#publish"))
	p.contains("#pub-result", "confirmed: publish #2")
	p.contains("#messages", "browser.big", "1048576 bytes")
	select {
	case d := <-bigs:
		if len(d.Body) != 1<<20 {
			t.Fatalf("the page's big message has %d bytes", len(d.Body))
		}
		for i, b := range d.Body {
			if b != byte(i) {
				t.Fatalf("the page's big message differs at byte %d", i)
			}
		}
	case <-time.After(uiWait):
		t.Fatal("the page's 1 MiB message never reached the Go consumer")
	}

	p.do("close", uiClick("#disconnect"))
	p.text("#status", "closed (cleanly)", func(s string) bool { return s == "closed" })
	eventually(t, 5*time.Second, "the page's connection leaves the management API", func() bool {
		return countOf(wsAMQPProtocols(t, inst), "AMQP 0-9-1/WebSocket") == 0
	})
}
