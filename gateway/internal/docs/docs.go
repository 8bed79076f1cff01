package docs

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/openapi"
)

// docsUI is the API docs page: one self-contained HTML file that renders
// /openapi.json in the browser (no CDN, no build step).
//
//go:embed docsui
var docsUI embed.FS

// Routes serves the API docs at /docs, the OpenAPI document at
// /openapi.json and the AsyncAPI document of the JSON WebSocket protocol
// (/v1/ws) at /asyncapi.json.
func Routes(e *echo.Echo) {
	sub, err := fs.Sub(docsUI, "docsui")
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	page, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	serve := func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-cache")
		c.Response().Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
		return c.HTMLBlob(http.StatusOK, page)
	}
	e.GET("/docs", serve)
	e.GET("/docs/", serve)
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, openapi.JSON())
	})
	e.GET("/asyncapi.json", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, openapi.AsyncAPI())
	})
}
