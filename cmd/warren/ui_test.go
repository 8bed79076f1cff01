package main

// The management web UI in a real browser: headless Chromium (Debian's
// chromium package) driven over the DevTools protocol with chromedp
// against an in-process Warren. The test logs in as guest, sees a queue
// declared over AMQP with its message count, publishes and gets a message
// from the queue page, shows an API error next to its form, deletes the
// queue, watches the overview charts update live, adds a user on the
// admin page, logs in as that monitoring user (read-only: no Admin, no
// publish) and checks the phone layout. It asserts on what the page shows.
//
// Environment (shared with browser_test.go):
//
//	WARREN_CHROMIUM              the browser binary (default: chromium in PATH)
//	WARREN_REQUIRE_BROWSER=1     fail instead of skip without a browser
//	WARREN_UPDATE_SCREENSHOT=1   write docs/screenshot-{overview,queue,admin}.png
//	                             (and wait 40 s on the overview for fuller curves)
//	WARREN_UI_SCREENSHOT_DIR     write every screenshot there instead (for review)

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// uiWait bounds every wait for the page; the UI refreshes every 5 s.
const uiWait = 20 * time.Second

// uiPage is a browser tab on the UI with helpers that fail the test.
type uiPage struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	jsErrors []string
}

func newUIPage(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *uiPage {
	t.Helper()
	chrome := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-prefers-reduced-motion", true),
	}
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	p := &uiPage{t: t, ctx: bctx, base: base}
	if err := chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			p.mu.Lock()
			p.jsErrors = append(p.jsErrors, fmt.Sprintf("%s (line %d)", exceptionText(e.ExceptionDetails), e.ExceptionDetails.LineNumber))
			p.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				p.mu.Lock()
				p.jsErrors = append(p.jsErrors, "console.error: "+strings.Join(parts, " "))
				p.mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.jsErrors {
			t.Errorf("JavaScript error in the page: %s", e)
		}
	})
	return p
}

func uiClick(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// uiSet sets the value of an input, select or textarea as typing would,
// firing input and change.
func uiSet(sel, v string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) throw new Error("no element " + %q);
		el.value = %q;
		el.dispatchEvent(new Event("input", {bubbles: true}));
		el.dispatchEvent(new Event("change", {bubbles: true}));
		return el.value === %q;
	})()`, sel, sel, v, v)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.WaitVisible(chromedp.CSS(sel))(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		ok, err := chromedp.Evaluate[bool](js)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("%s did not take the value %q", sel, v)
		}
		return chromedp.Void{}, err
	}
}
func uiKeys(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), v)
}

func (p *uiPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, uiWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		png, _ := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		shot := filepath.Join(p.t.TempDir(), "failed.png")
		os.WriteFile(shot, png, 0o644)
		p.t.Fatalf("%s: %v (page at %s: %q; screenshot %s)", what, err, p.eval(`location.hash`), p.eval(`document.querySelector("main") ? document.querySelector("main").innerText.slice(0, 3000) : document.body.innerText.slice(0, 2000)`), shot)
	}
}

func (p *uiPage) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// text waits until the text of the first element matching sel satisfies
// ok and returns it.
func (p *uiPage) text(sel, what string, ok func(string) bool) string {
	p.t.Helper()
	js := fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)
	deadline := time.Now().Add(uiWait)
	var last string
	for time.Now().Before(deadline) {
		last = p.eval(js)
		if ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s never showed %s (last: %q)", sel, what, last)
	return ""
}

func (p *uiPage) contains(sel string, subs ...string) string {
	p.t.Helper()
	return p.text(sel, fmt.Sprintf("%q", subs), func(s string) bool {
		for _, x := range subs {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}

// count is how many elements match sel.
func (p *uiPage) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

func (p *uiPage) open(hash string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`location.hash = %q`, hash))
}

func (p *uiPage) login(user, pass string) {
	p.t.Helper()
	p.do("log in as "+user,
		chromedp.WaitVisible(chromedp.CSS("#login-user")),
		uiSet("#login-user", user),
		uiSet("#login-pass", pass),
		uiClick("#login-submit"),
	)
}

// screenshot saves the page to docs/<name> under WARREN_UPDATE_SCREENSHOT=1,
// else to the test's temporary directory.
func (p *uiPage) screenshot(name string) {
	p.t.Helper()
	p.eval(`window.scrollTo(0, 0); ""`)
	time.Sleep(300 * time.Millisecond) // let the charts redraw at their size
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	dir := p.t.TempDir()
	if d := os.Getenv("WARREN_UI_SCREENSHOT_DIR"); d != "" {
		dir = d
	} else if os.Getenv("WARREN_UPDATE_SCREENSHOT") == "1" && !strings.Contains(name, "phone") {
		dir = filepath.Join("..", "..", "docs")
	}
	out := filepath.Join(dir, name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s (%d bytes)", out, len(png))
}

func TestManagementUI(t *testing.T) {
	chromiumPath(t) // skip early without a browser
	t.Parallel()
	inst := startWarren(t, "")
	base := "http://" + inst.HTTPAddr()
	docs := os.Getenv("WARREN_UPDATE_SCREENSHOT") == "1" || os.Getenv("WARREN_UI_SCREENSHOT_DIR") != ""

	conn, err := amqp.DialConfig(amqpURL(inst), amqp.Config{Properties: amqp.Table{"connection_name": "orders-service"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish := func(key, body string) {
		t.Helper()
		dc, err := ch.PublishWithDeferredConfirm("", key, false, false, amqp.Publishing{ContentType: "text/plain", Body: []byte(body)})
		if err != nil || !dc.Wait() {
			t.Fatalf("publish to %s: %v", key, err)
		}
	}

	p := newUIPage(t, base)
	p.do("open the UI", chromedp.Navigate(base+"/"))

	// A wrong password is refused with a readable message (and no
	// browser login dialog: the page would hang here if one opened).
	p.login("guest", "wrong")
	p.contains("#login .msg", "Login failed")

	p.login("guest", "guest")
	p.contains("#who-user", "guest")
	p.contains("#node-version", "Warren")
	if hidden := p.eval(`String(document.querySelector("#overview-nodes").hidden)`); hidden != "true" {
		t.Errorf("a single node shows the cluster nodes table (hidden = %s)", hidden)
	}

	// A reload keeps the session.
	p.do("reload", chromedp.Reload())
	p.contains("#who-user", "guest")
	p.text("#tile-queues .tile-value", "0 queues", func(s string) bool { return s == "0" })

	// Declared over AMQP -> the overview counts it without a reload, the
	// queues table lists it with its message count.
	const q = "ui-orders"
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-max-length": int32(1000)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publish(q, fmt.Sprintf(`{"order": %d}`, i+1))
	}
	p.text("#tile-queues .tile-value", "1 queue (live refresh)", func(s string) bool { return s == "1" })

	p.open("#/queues")
	row := fmt.Sprintf(`tr[data-queue=%q]`, q)
	p.contains(row, q, "Lim", "running")
	p.text(row+` td[data-label="Total"]`, "3 messages", func(s string) bool { return s == "3" })
	p.text(row+` td[data-label="Ready"]`, "3 ready", func(s string) bool { return s == "3" })

	// A quorum queue added from the form shows its type in the list.
	p.do("add a quorum queue",
		uiSet("#add-queue-name", "ui-quorum"),
		uiSet("#add-queue-type", "quorum"),
		uiClick("#add-queue-submit"))
	p.contains("#add-queue .msg.ok", "ui-quorum")
	p.text(`tr[data-queue="ui-quorum"] td[data-label="Type"]`, "type quorum", func(s string) bool { return s == "quorum" })
	p.text(row+` td[data-label="Type"]`, "type classic", func(s string) bool { return s == "classic" })

	// The filter hides what does not match.
	p.do("filter", uiKeys("#queues-filter", "nomatch"))
	p.contains("table.queues tbody", "No queues match")
	p.do("clear filter", uiSet("#queues-filter", ""), uiKeys("#queues-filter", "orders"))
	p.contains("table.queues tbody", q)

	// The queue page.
	p.do("open the queue", uiClick(row+" a"))
	p.contains("#queue-name", q)
	p.text("#queue-total .tile-value", "3 messages", func(s string) bool { return s == "3" })
	p.contains(".view.queue", "(default exchange)") // the implicit binding

	// Publish from the UI.
	p.do("publish from the UI",
		uiSet("#publish-payload", "hello from the UI"),
		uiSet("#publish-headers", `{"x-source": "browser"}`),
		uiSet("#publish-properties", `{"correlation_id": "c-42"}`),
		uiClick("#publish-submit"),
	)
	p.contains("#publish .msg.ok", "routed")
	p.text("#queue-total .tile-value", "4 messages", func(s string) bool { return s == "4" })

	// Get the four messages back (requeued), payload, properties, headers.
	p.do("get messages",
		uiSet("#get-count", "10"),
		uiSet("#get-ackmode", "ack_requeue_true"),
		uiClick("#get-submit"),
	)
	p.contains("#get .msg.ok", "Got 4 messages")
	got := p.contains("#get-result", `{"order": 1}`, "hello from the UI", "x-source", "browser", "correlation_id", "c-42", "text/plain")
	if n := p.count("#get-result article.message"); n != 4 {
		t.Fatalf("the page shows %d messages, want 4: %q", n, got)
	}
	if qi, err := ch.QueueDeclarePassive(q, true, false, false, false, amqp.Table{"x-max-length": int32(1000)}); err != nil || qi.Messages != 4 {
		t.Fatalf("after a requeueing get over the UI the queue holds %d messages (err %v), want 4", qi.Messages, err)
	}

	// A consumer with a prefetch shows on the queue page and in channels.
	cch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cch.Consume(q, "ui-consumer", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	p.contains(".view.queue", "ui-consumer")
	if docs {
		// Some traffic for the picture's charts.
		pch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 150 {
			pch.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf(`{"order": %d}`, i+5))})
			time.Sleep(200 * time.Millisecond)
		}
		pch.Close()
		p.screenshot("screenshot-queue.png")
	}

	// An API error appears next to its form, as a sentence.
	p.do("bind from a missing exchange",
		uiSet("#bind-source", "no-such-exchange"),
		uiClick("#bind-submit"),
	)
	msg := p.contains("#bind .msg.error", "no-such-exchange")
	if strings.Contains(msg, "{") || strings.Contains(msg, `"reason"`) {
		t.Fatalf("the error is shown as raw JSON: %q", msg)
	}
	// Add a real binding from amq.direct.
	p.do("bind from amq.direct",
		uiSet("#bind-source", "amq.direct"),
		uiSet("#bind-routing_key", "orders.new"),
		uiClick("#bind-submit"),
	)
	p.contains("#bind .msg.ok", "Bound")
	p.contains(".view.queue", "amq.direct", "orders.new")

	// The exchanges table, the default exchange's page, and amq.direct's:
	// routing dry run and publish with the routed flag.
	p.open("#/exchanges")
	p.contains("main table tbody", "amq.default", "amq.topic", "headers")
	p.open("#/exchanges/%2F/amq.default")
	p.contains("table.bindings-source", "implicit bindings")
	p.do("dry run on the default exchange", uiSet("#route-routing_key", q), uiClick("#route-submit"))
	p.contains("#route-result", "Routed to", q)
	p.open("#/exchanges/%2F/amq.direct")
	p.contains("#exchange-type", "direct")
	p.contains("table.bindings-source", q, "orders.new")
	p.do("dry run", uiSet("#route-routing_key", "orders.new"), uiClick("#route-submit"))
	p.contains("#route-result", "Routed to", q)
	p.do("dry run, no match", uiSet("#route-routing_key", "orders.old"), uiClick("#route-submit"))
	p.contains("#route-result", "Not routed")
	p.do("publish unroutable",
		uiSet("#xpublish-routing_key", "nowhere"),
		uiSet("#xpublish-payload", "lost"),
		uiClick("#xpublish-submit"))
	p.contains("#xpublish .msg.error", "not routed")

	// Connections: the AMQP client with its properties and channels.
	p.open("#/connections")
	p.contains("table.data tbody", "orders-service", "guest")
	p.do("select the connection", uiClick("a.conn-link"))
	p.contains("#connection-detail", "connection_name", "orders-service", "publisher_confirms", "Close connection")
	p.open("#/channels")
	p.contains("table.channels tbody", "guest")

	// Delete the queue from its page.
	p.open("#/queues/%2F/" + q)
	p.contains("#queue-name", q)
	cch.Close()
	p.do("delete the queue", uiClick("#delete-queue"), uiClick("#delete-queue-yes"))
	p.text("#app", "the queues page", func(string) bool { return p.eval(`location.hash`) == "#/queues" })
	p.text("table.queues tbody", "no queue", func(s string) bool { return !strings.Contains(s, q) && s != "" })
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.QueueDeclarePassive(q, true, false, false, false, nil); err == nil {
		t.Fatalf("queue %s still exists after the UI deleted it", q)
	}

	// Live charts: traffic over AMQP moves the publish curve and the
	// legend without a reload.
	if _, err := ch.QueueDeclare("ui-live", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			dc, err := ch.PublishWithDeferredConfirm("", "ui-live", false, false, amqp.Publishing{Body: []byte("tick")})
			if err != nil || !dc.Wait() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// A consumer that acks more slowly than the publisher publishes.
	lch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	lch.Qos(5, 0, false)
	deliveries, err := lch.Consume("ui-live", "live-consumer", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopTraffic := func() { stop.Store(true); lch.Close(); wg.Wait() }
	t.Cleanup(stopTraffic)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for d := range deliveries {
			time.Sleep(35 * time.Millisecond)
			d.Ack(false)
		}
	}()
	p.open("#/")
	p.text("figure.chart .legend li:first-child b", "a publish rate above 0", func(s string) bool { return s != "" && s != "0/s" })
	p.text("figure.chart .legend li:nth-child(3) b", "an ack rate above 0", func(s string) bool { return s != "" && s != "0/s" })
	p.text("#tile-consumers .tile-value", "the consumer", func(s string) bool { return s == "1" })
	if n := p.count("figure.chart polyline"); n < 6 {
		t.Fatalf("the overview shows %d chart lines, want 6", n)
	}
	if docs {
		time.Sleep(40 * time.Second) // let the curves grow for the picture
	}
	if docs {
		p.screenshot("screenshot-overview.png")
	}
	stopTraffic()

	// Admin: add a monitoring user with a password, give it permissions.
	p.open("#/admin")
	p.contains("table.users tbody", "guest", "administrator")
	p.do("add a user",
		uiSet("#add-user-name", "ui-watcher"),
		uiSet("#add-user-password", "s3cret"),
		uiSet("#add-user-tags", "monitoring"),
		uiClick("#add-user-submit"))
	p.contains("#add-user .msg.ok", "ui-watcher")
	p.contains(`tr[data-user="ui-watcher"]`, "monitoring")
	p.do("add a vhost",
		uiSet("#add-vhost-name", "staging"),
		uiSet("#add-vhost-description", "pre-production"),
		uiClick("#add-vhost-submit"))
	p.contains("table.vhosts tbody", "staging") // the API does not keep descriptions yet
	p.text("#set-permission-user", "the new user in the form", func(string) bool {
		return p.eval(`[...document.querySelectorAll("#set-permission-user option")].map(o => o.value).join(",")`) != "" &&
			strings.Contains(p.eval(`[...document.querySelectorAll("#set-permission-user option")].map(o => o.value).join(",")`), "ui-watcher")
	})
	p.do("set a permission",
		uiSet("#set-permission-user", "ui-watcher"),
		uiSet("#set-permission-vhost", "/"),
		uiSet("#set-permission-write", "^$"),
		uiClick("#set-permission-submit"))
	p.contains("table.permissions tbody", "ui-watcher", "^$")
	// The admin API's own refusals read as sentences too.
	p.do("add a user twice", uiSet("#add-user-name", "guest"), uiClick("#add-user-submit"))
	p.contains("#add-user .msg.error", "exists already")
	if docs {
		p.screenshot("screenshot-admin.png")
	}

	// Log out; the monitoring user sees everything but changes nothing.
	p.do("log out", uiClick("#logout"))
	p.login("ui-watcher", "s3cret")
	p.contains("#who-user", "ui-watcher")
	if n := p.count("#nav-admin"); n != 0 {
		t.Fatalf("a monitoring user sees the Admin tab")
	}
	p.open("#/queues/%2F/ui-live")
	p.contains("#queue-name", "ui-live")
	p.contains(".view.queue", "Get messages")
	if n := p.count("#publish, #purge, #delete-queue, #bind"); n != 0 {
		t.Fatalf("a monitoring user sees %d publish/purge/delete/bind controls", n)
	}
	if n := p.count("#get-ackmode option"); n != 2 {
		t.Fatalf("a monitoring user may choose %d ack modes, want the 2 that requeue", n)
	}
	p.open("#/admin")
	p.contains("main", "Administrators only")
	p.open("#/no/such/page")
	p.contains("main", "Page not found")

	// A user without a management tag is told why it cannot log in.
	newMgmtClient(t, inst).want(201, "PUT", "/api/users/ui-nobody", map[string]any{"password": "pw", "tags": ""}, nil)
	p.do("log out", uiClick("#logout"))
	p.login("ui-nobody", "pw")
	p.contains("#login .msg", "needs the management, monitoring or administrator tag")
	p.login("ui-watcher", "s3cret")
	p.contains("#who-user", "ui-watcher")

	// Phone width: nothing wider than the screen but the tables' own
	// scrolling boxes.
	p.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait))
	for _, page := range []struct{ hash, sel, want string }{
		{"#/", "#overview-node", "Warren"},
		{"#/queues/%2F/ui-live", "#queue-name", "ui-live"},
		{"#/exchanges/%2F/amq.topic", "#exchange-type", "topic"},
		{"#/connections", "main", "Connections"},
		{"#/queues", "table.queues tbody", "ui-live"},
	} {
		p.open(page.hash)
		p.contains(page.sel, page.want)
		time.Sleep(200 * time.Millisecond)
		if p.eval(`String(document.documentElement.scrollWidth > window.innerWidth + 1)`) == "true" {
			w := p.eval(`String(document.documentElement.scrollWidth)`)
			t.Fatalf("at 390 px the page %s is %s px wide", page.hash, w)
		}
	}
	p.screenshot("screenshot-phone.png") // for review only (WARREN_UI_SCREENSHOT_DIR)
}

// TestManagementUIServing checks the static part without a browser: the
// page and its assets, their types and security headers, and that the UI
// shadows none of the API paths.
func TestManagementUIServing(t *testing.T) {
	t.Parallel()
	inst := startWarren(t, "")
	c := newMgmtClient(t, inst)
	get := func(path string) (int, string, string, string) {
		t.Helper()
		st, body, hdr := c.do("GET", path, nil)
		return st, hdr.Get("Content-Type"), hdr.Get("Content-Security-Policy"), string(body)
	}
	st, ct, csp, body := get("/")
	if st != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `src="/assets/app.js"`) || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("GET / = %d %s csp=%q\n%s", st, ct, csp, body)
	}
	for _, a := range []string{"app.js", "api.js", "dom.js", "chart.js", "widgets.js", "state.js", "overview.js", "queues.js", "exchanges.js", "connections.js", "admin.js"} {
		if st, ct, _, _ := get("/assets/" + a); st != 200 || !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("GET /assets/%s = %d %s", a, st, ct)
		}
	}
	if st, ct, _, _ := get("/assets/style.css"); st != 200 || !strings.HasPrefix(ct, "text/css") {
		t.Errorf("GET /assets/style.css = %d %s", st, ct)
	}
	st, ct, _, body = get("/assets/nope.js")
	var e struct{ Error, Reason string }
	if st != 404 || !strings.HasPrefix(ct, "application/json") || json.Unmarshal([]byte(body), &e) != nil || e.Error != "not_found" {
		t.Errorf("GET /assets/nope.js = %d %s %s", st, ct, body)
	}
	if st, _, _, _ := get("/assets/../../go.mod"); st == 200 {
		t.Errorf("an asset path escapes the embedded directory")
	}
	// The API paths still answer as the API.
	for _, path := range []string{"/api/overview", "/healthz", "/openapi.json"} {
		if st, ct, _, _ := get(path); st != 200 || !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s = %d %s: the UI must not shadow it", path, st, ct)
		}
	}
	if st, ct, _, _ := get("/api/no-such-thing"); st != 404 || !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /api/no-such-thing = %d %s, want a JSON 404", st, ct)
	}
}
