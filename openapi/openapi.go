// Package openapi holds Warren's HTTP API contract: OpenAPI 3 documents,
// one per area (base.json for health and the document itself, and one file
// per API area as it lands), merged into one document served at
// /openapi.json. asyncapi.json, an AsyncAPI 3 document of the JSON
// WebSocket protocol at /v1/ws, is kept apart and served as it is at
// /asyncapi.json. It depends on nothing; the gateway imports it to serve
// the documents, to check its routes and WebSocket ops against them, and
// to validate every request of a documented route (gateway/validate.go:
// parameters and JSON bodies, with kin-openapi, which must load and
// validate the merged document).
package openapi

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"sync"
)

//go:embed *.json
var files embed.FS

var merged = sync.OnceValues(merge)

// asyncAPIFile is the AsyncAPI document; it is not an OpenAPI part.
const asyncAPIFile = "asyncapi.json"

// AsyncAPI returns the AsyncAPI document of the WebSocket JSON protocol.
func AsyncAPI() []byte {
	b, err := files.ReadFile(asyncAPIFile)
	if err != nil {
		panic(err) // embedded above
	}
	return b
}

// JSON returns the merged OpenAPI document.
func JSON() []byte {
	b, err := merged()
	if err != nil {
		panic(err) // the embedded documents are checked by tests
	}
	return b
}

// Doc is the part of an OpenAPI document that merging needs.
type Doc struct {
	OpenAPI    string                    `json:"openapi"`
	Info       map[string]any            `json:"info,omitempty"`
	Servers    []any                     `json:"servers,omitempty"`
	Tags       []any                     `json:"tags,omitempty"`
	Paths      map[string]map[string]any `json:"paths"`
	Components map[string]map[string]any `json:"components,omitempty"`
}

// merge combines base.json with every other *.json: paths, tags and
// components are unioned; a path or component defined twice is an error.
func merge() ([]byte, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out Doc
	if err := load("base.json", &out); err != nil {
		return nil, err
	}
	if out.Components == nil {
		out.Components = map[string]map[string]any{}
	}
	for _, n := range names {
		if n == "base.json" || n == asyncAPIFile {
			continue
		}
		var d Doc
		if err := load(n, &d); err != nil {
			return nil, err
		}
		for p, ops := range d.Paths {
			if _, dup := out.Paths[p]; dup {
				return nil, fmt.Errorf("openapi: path %s defined twice (%s)", p, n)
			}
			out.Paths[p] = ops
		}
		out.Tags = append(out.Tags, d.Tags...)
		for kind, m := range d.Components {
			if out.Components[kind] == nil {
				out.Components[kind] = map[string]any{}
			}
			for k, v := range m {
				if _, dup := out.Components[kind][k]; dup {
					return nil, fmt.Errorf("openapi: component %s/%s defined twice (%s)", kind, k, n)
				}
				out.Components[kind][k] = v
			}
		}
	}
	return json.MarshalIndent(out, "", "  ")
}

func load(name string, d *Doc) error {
	b, err := files.ReadFile(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, d); err != nil {
		return fmt.Errorf("openapi: %s: %w", name, err)
	}
	if d.Paths == nil {
		d.Paths = map[string]map[string]any{}
	}
	return nil
}
