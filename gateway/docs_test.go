package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/openapi"
)

// TestAsyncAPIServed: /asyncapi.json serves the AsyncAPI document of the
// JSON WebSocket protocol (gateway/websocket checks the document against
// the code).
func TestAsyncAPIServed(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mapping.Open(mapping.Config{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hs := httptest.NewServer(New(Config{Logger: log}, r).echo)
	defer hs.Close()

	resp, err := http.Get(hs.URL + "/asyncapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || string(body) != string(openapi.AsyncAPI()) {
		t.Fatalf("GET /asyncapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}
