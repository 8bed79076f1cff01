// Package validate is the gateway's request validation: middleware that
// checks every request of a documented route against the OpenAPI
// document (package openapi) before its handler runs, with kin-openapi
// schemas compiled once (validate_compile.go): parameters
// (validate_params.go) and JSON bodies (validate_body.go), answering 400
// with a reason that names the field. A validated JSON body is decoded
// once and handed to the handler (handoff.go: Body, and the helpers the
// handlers use to read it; into.go: Into and Assign, which store it in a
// handler's Go type by encoding/json's rules). It holds no state beyond
// the compiled document and a cache of struct fields.
package validate
