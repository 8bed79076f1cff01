package gateway

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/warrenmq/warren/openapi"
)

// echoParam turns echo's ":name" and "*" into OpenAPI's "{name}".
var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

func specPath(echoPath string) string {
	p := echoParam.ReplaceAllString(echoPath, "{$1}")
	return strings.ReplaceAll(p, "*", "{path}")
}

// TestRoutesMatchOpenAPI fails when a route exists that the OpenAPI
// document does not describe, or the document describes one that does not
// exist (method and path).
func TestRoutesMatchOpenAPI(t *testing.T) {
	var doc openapi.Doc
	if err := json.Unmarshal(openapi.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	s := New(Config{}, nil)
	served := map[string]bool{}
	for _, r := range s.echo.Routes() {
		if r.Method == "echo_route_any" || strings.HasPrefix(r.Path, "/ui") || undocumented(r.Path) {
			continue
		}
		served[r.Method+" "+specPath(r.Path)] = true
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, k := range missing {
		t.Errorf("route %s is served but not in the OpenAPI document", k)
	}
	for _, k := range extra {
		t.Errorf("the OpenAPI document describes %s, which is not served", k)
	}
}
