package mgmt

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// The management web UI: static files embedded in the binary (no build
// step, no CDN), served at / (the single page) and /assets/ (its modules
// and style sheet). The page talks to the broker only through the public
// management API under /api/ and /v1/route; docs/ui.md describes it.
//
// Only "/" and "/assets/*" are registered, so the UI never shadows /api/,
// /v1/, /metrics, /healthz, /openapi.json, /docs, /examples or /ws; the
// page routes inside the document with the URL fragment (#/queues/...),
// which the server never sees.

//go:embed ui
var uiFiles embed.FS

// uiCSP keeps the page to its own origin: no inline script or style, no
// third-party loads; images only from the page itself (canvas/SVG charts
// are drawn in script).
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// uiRoutes registers the web UI.
func (s *Server) uiRoutes() {
	root, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		panic(err)
	}
	headers := func(c echo.Context) {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
	}
	s.echo.GET("/", func(c echo.Context) error {
		headers(c)
		return c.HTMLBlob(http.StatusOK, index)
	})
	s.echo.GET("/assets/*", func(c echo.Context) error {
		name := path.Clean("/" + c.Param("*"))
		b, err := fs.ReadFile(root, "assets"+name)
		if err != nil || strings.HasSuffix(name, "/") {
			return apiError(http.StatusNotFound, "no UI asset '"+name+"'")
		}
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8" // module scripts need a JavaScript MIME type
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		headers(c)
		return c.Blob(http.StatusOK, ct, b)
	})
}
