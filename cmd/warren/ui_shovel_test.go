package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestShovelsUI: in a real browser, the Shovels page adds a shovel with
// its form, shows it running with its ends, shows an invalid definition's
// error beside the form, and deletes the shovel.
func TestShovelsUI(t *testing.T) {
	chromiumPath(t) // skip early without a browser
	t.Parallel()
	inst := startWarren(t, "")
	base := "http://" + inst.HTTPAddr()
	p := newUIPage(t, base)
	p.do("open the UI", chromedp.Navigate(base+"/"))
	p.login("guest", "guest")
	p.open("#/shovels")
	p.contains("main h1", "Shovels")
	p.do("fill the form",
		uiSet("#add-shovel-name", "ui-move"),
		uiSet("#add-shovel-src_queue", "ui-src"),
		uiSet("#add-shovel-dest_queue", "ui-dst"),
		uiClick("#add-shovel-submit"))
	p.contains("#add-shovel .msg", "Shovel ui-move saved.")
	p.text("table.shovels", "the shovel running", func(s string) bool {
		return strings.Contains(s, "ui-move") && strings.Contains(s, "running") && strings.Contains(s, "queue ui-src") && strings.Contains(s, "queue ui-dst")
	})
	publishN(t, amqpURL(inst), "ui-src", "u", 3, nil)
	drain(t, amqpURL(inst), "ui-dst", ids("u", 3), 30*time.Second)

	p.do("submit a bad definition",
		uiSet("#add-shovel-name", "ui-bad"),
		uiSet("#add-shovel-extra", `{"bogus": 1}`),
		uiClick("#add-shovel-submit"))
	p.contains("#add-shovel .msg.error", "bogus")

	p.do("delete", uiClick("#delete-shovel-_-ui-move"), uiClick("#delete-shovel-_-ui-move-yes"))
	p.text("table.shovels", "the shovel gone", func(s string) bool { return !strings.Contains(s, "ui-move") })
	newMgmtClient(t, inst).wantError(404, "not_found", "GET", "/api/parameters/shovel/%2F/ui-move", nil)
}
