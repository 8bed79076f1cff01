// Package docs serves the gateway's documentation: the OpenAPI document
// at /openapi.json, the API docs page at /docs (docsui/, rendering
// /openapi.json in the browser), the AsyncAPI document of the JSON
// WebSocket protocol at /asyncapi.json (docs.go), and the browser example
// with the JS client at /examples/ (examples.go). It holds no state.
package docs
