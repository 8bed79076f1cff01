package main

// A real browser: headless Chromium (Debian's chromium package), driven
// over the DevTools protocol with chromedp, loads the example page from
// an in-process Warren, subscribes with warren.js, receives a message
// published over AMQP, publishes from the page and makes an RPC call to an
// amqp091-go worker; the test asserts what the page shows.
//
// Environment:
//
//	WARREN_CHROMIUM              the browser binary (default: chromium,
//	                             chromium-browser, google-chrome in PATH)
//	WARREN_REQUIRE_BROWSER=1     fail instead of skip without a browser
//	WARREN_UPDATE_SCREENSHOT=1   write docs/screenshot-browser.png

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"
)

func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("WARREN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needTool(t, "the browser test needs Chromium: apt-get install -y chromium (make test does it), or set WARREN_CHROMIUM")
	return ""
}

// pageText waits until the element's text satisfies ok, and returns it.
func pageText(ctx context.Context, sel string, what string, ok func(string) bool) (string, error) {
	deadline := time.Now().Add(15 * time.Second)
	var text string
	for time.Now().Before(deadline) {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
		if err != nil {
			return "", err
		}
		text = s
		if ok(s) {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return text, fmt.Errorf("%s: %s never showed %s (last: %q)", sel, sel, what, text)
}

func TestBrowserExample(t *testing.T) {
	chrome := chromiumPath(t)
	t.Parallel()
	inst := startWarren(t, "")
	wsRPCWorker(t, inst, "rpc_queue")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	var mu sync.Mutex
	var jsErrors []string
	if err := chromedp.Listen(bctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			mu.Lock()
			jsErrors = append(jsErrors, fmt.Sprintf("%s (line %d)", exceptionText(e.ExceptionDetails), e.ExceptionDetails.LineNumber))
			mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				mu.Lock()
				jsErrors = append(jsErrors, "console.error: "+strings.Join(parts, " "))
				mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range jsErrors {
			t.Errorf("JavaScript error in the page: %s", e)
		}
	}()

	url := "http://" + inst.HTTPAddr() + "/examples/"
	if err := chromedp.Do(bctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.Click(chromedp.ID("connect")),
	); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if _, err := pageText(bctx, "#status", "connected", func(s string) bool { return s == "connected" }); err != nil {
		t.Fatal(err)
	}
	// Subscribe to amq.topic with kern.* (the page's form).
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("sub-key"), "kern.*"),
		chromedp.Click(chromedp.ID("subscribe")),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := pageText(bctx, "#sub-info", "the subscription", func(s string) bool { return strings.Contains(s, "subscribed to amq.topic") }); err != nil {
		t.Fatal(err)
	}
	// AMQP publish -> the page lists it.
	_, ch := wsAMQP(t, inst)
	if err := ch.Publish("amq.topic", "kern.critical", false, false, amqp.Publishing{Body: []byte("disk almost full")}); err != nil {
		t.Fatal(err)
	}
	ch.Publish("amq.topic", "user.info", false, false, amqp.Publishing{Body: []byte("not for kern.*")})
	if _, err := pageText(bctx, "#messages", "the AMQP message", func(s string) bool {
		return strings.Contains(s, "kern.critical") && strings.Contains(s, "disk almost full")
	}); err != nil {
		t.Fatal(err)
	}
	// The page publishes, and receives its own message through the binding.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("pub-key"), "kern.info"),
		chromedp.SetValue(chromedp.ID("pub-body"), "hello from the browser"),
		chromedp.Click(chromedp.ID("publish")),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := pageText(bctx, "#messages", "the page's own message", func(s string) bool { return strings.Contains(s, "hello from the browser") }); err != nil {
		t.Fatal(err)
	}
	// RPC to the amqp091-go worker.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("rpc-body"), "hello warren"),
		chromedp.Click(chromedp.ID("rpc")),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := pageText(bctx, "#rpc-result", "the RPC reply", func(s string) bool { return s == "HELLO WARREN" }); err != nil {
		t.Fatal(err)
	}
	if list, _ := pageText(bctx, "#messages", "", func(string) bool { return true }); strings.Contains(list, "not for kern.*") {
		t.Fatalf("the page shows a message its binding key does not match: %q", list)
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "screenshot-browser.png")
	if os.Getenv("WARREN_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", "screenshot-browser.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}
