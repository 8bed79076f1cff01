package docs

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/clients"
	"github.com/warrenmq/warren/gateway/internal/httpx"
)

// ExampleRoutes serves the browser example at /examples/ and the JS
// client at /examples/warren.js (both embedded from clients/).
func ExampleRoutes(e *echo.Echo) {
	e.GET("/examples", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, "/examples/")
	})
	e.GET("/examples/*", serveExample)
}

func serveExample(c echo.Context) error {
	name := path.Clean("/" + c.Param("*"))
	var file string
	switch {
	case name == "/":
		file = "examples/browser/index.html"
	case name == "/warren.js" || name == "/warren.d.ts":
		file = "js" + name
	default:
		file = "examples/browser" + name
	}
	b, err := fs.ReadFile(clients.Files, file)
	if err != nil {
		return httpx.APIError(http.StatusNotFound, "no example file '"+strings.TrimPrefix(name, "/")+"'")
	}
	ct := "application/octet-stream"
	switch path.Ext(file) {
	case ".html":
		ct = "text/html; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".ts":
		ct = "text/plain; charset=utf-8"
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, ct, b)
}
