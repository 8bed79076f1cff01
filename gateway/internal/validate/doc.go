// Package validate is the gateway's request validation: middleware that
// checks every request of a documented route against the OpenAPI
// document (package openapi) before its handler runs: parameters
// (validate_params.go) and JSON bodies (validate_json.go) against schemas
// compiled once (validate_compile.go), answering 400 with a reason that
// names the field. It holds no state beyond the compiled document.
package validate
