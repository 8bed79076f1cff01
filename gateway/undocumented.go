package gateway

import "strings"

// undocumented lists served paths that are not part of the API contract:
// static assets of the web UI, examples and API docs pages.
func undocumented(path string) bool {
	for _, p := range []string{"/assets", "/examples", "/docs"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return path == "/" || path == "/*"
}
