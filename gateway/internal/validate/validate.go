package validate

// Request validation against the OpenAPI document (openapi.JSON()), the
// contract of every /v1/ and /api/ route.
//
// The document is loaded, resolved and validated once by kin-openapi
// (getkin/kin-openapi) when the middleware is made; every operation
// becomes an oaOp keyed by method and echo route template (the document's
// "{name}" is echo's ":name"), holding the parameters worth checking and
// the library's schema of its application/json request body. No library
// router runs per request: the middleware looks the operation up by
// c.Path() (the matched route, set by echo's router before e.Use
// middleware runs) and checks:
//
//   - query, header and path parameters: required ones present, values
//     converted to the declared type (integer, number, boolean, string)
//     and checked with the operation's compiled schema. An empty value
//     counts as absent, as the handlers treat it. Unknown query parameters
//     pass: RabbitMQ clients send extras. Booleans take what
//     strconv.ParseBool takes (true, false, 1, 0, ...), as the handlers do.
//   - an application/json request body, when the request says it is JSON
//     and the operation declares a JSON schema: decoded once
//     (encoding/json, numbers as json.Number), nesting at most oaMaxDepth
//     (the core's table limit plus the envelope), then checked with the
//     schema. The decoded value is left in the context (oaBodyKey) for the
//     handler. Bodies of other types (the raw publish body,
//     application/octet-stream, multipart) are not read. The body is read
//     once and put back for the handler; a body larger than maxBody is not
//     validated and left to the handler's own limit.
//
// A failure is 400 bad_request naming the parameter or field and what was
// wrong. Authentication still comes first: for an operation whose
// security needs HTTP basic credentials, a failing request is
// authenticated before the 400 is sent (401 when that fails), and a JSON
// body is read only after authentication. authenticate leaves the user in
// the context, so the handler does not check the password again.
//
// Cost: a map lookup and the parameters with constraints that the request
// carries; the publish hot path (raw body, no such parameters) calls no
// library code.

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/openapi"
)

// Middleware returns the middleware that validates requests against
// the OpenAPI document. Register it with e.Use after the routes (so that
// it runs inside the metrics middleware, after routing). router (nil: the
// default limits) gives the message size limit; authenticate checks the
// credentials of a secured operation before its body is read.
func Middleware(router *mapping.Router, authenticate func(echo.Context) (*mapping.UserInfo, error)) echo.MiddlewareFunc {
	t, err := compileOpenAPI(openapi.JSON())
	if err != nil {
		panic(err) // the embedded document; TestOpenAPICompiles checks it
	}
	max := int64(mapping.DefaultMaxMessageSize)
	if router != nil {
		max = router.MaxMessageSize()
	}
	// The largest JSON body a handler takes is a batch publish
	// (restBody(c, 2*max+1<<20)); larger ones are not validated.
	v := &oaValidator{t: t, maxBody: 2*max + 1<<20, auth: authenticate}
	return v.middleware
}

// oaValidator is the compiled document and what validation needs.
type oaValidator struct {
	t       *oaTable
	maxBody int64
	auth    func(echo.Context) (*mapping.UserInfo, error)
}

// Documented reports whether the compiled document has an operation for
// method on the echo route path (gateway's route test asks it).
func Documented(method, path string) bool {
	t, err := compileOpenAPI(openapi.JSON())
	return err == nil && t.lookup(method, path) != nil
}

func (v *oaValidator) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		op := v.t.lookup(req.Method, c.Path())
		if op == nil {
			return next(c)
		}
		if err := op.checkParams(c); err != nil {
			return v.fail(c, op, err)
		}
		if op.body != nil && oaIsJSON(req.Header["Content-Type"]) {
			if op.secured {
				if _, err := v.auth(c); err != nil {
					return err
				}
			}
			if err := v.checkBody(c, op); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// fail answers a request that is not valid: 401 first when the
// operation needs credentials that the request does not have.
func (v *oaValidator) fail(c echo.Context, op *oaOp, err error) error {
	if op.secured {
		if _, aerr := v.auth(c); aerr != nil {
			return aerr
		}
	}
	return err
}

// checkBody reads a JSON body (at most maxBody bytes), puts it back for
// the handler and validates it against the operation's schema.
func (v *oaValidator) checkBody(c echo.Context, op *oaOp) error {
	req := c.Request()
	b, whole, err := oaReadBody(req, v.maxBody)
	if err != nil {
		return apiError(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	if !whole {
		return nil // too large to validate: the handler refuses or takes it
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if op.bodyRequired {
			return apiError(http.StatusBadRequest, "the request body is required")
		}
		return nil
	}
	val, err := oaValidateJSON(op, b)
	if err != nil {
		return err
	}
	c.Set(oaBodyKey, oaBody{val, len(b)})
	return nil
}

// oaReadBody reads the request body up to limit bytes and puts back a
// body that yields the same bytes. whole is false when the body is longer
// than limit; it is then put back unread past what was read.
func oaReadBody(req *http.Request, limit int64) (b []byte, whole bool, err error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, true, nil
	}
	if req.ContentLength > limit {
		return nil, false, nil
	}
	n := req.ContentLength
	if n < 0 {
		n = 512
	}
	b = make([]byte, 0, n+1)
	orig := req.Body
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		room := b[len(b):cap(b)]
		if int64(len(b)+len(room)) > limit+1 {
			room = room[:limit+1-int64(len(b))]
		}
		m, rerr := orig.Read(room)
		b = b[:len(b)+m]
		if int64(len(b)) > limit {
			req.Body = oaReadCloser{io.MultiReader(bytes.NewReader(b), orig), orig}
			return nil, false, nil
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, false, rerr
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b, true, nil
}

type oaReadCloser struct {
	io.Reader
	io.Closer
}

// oaIsJSON: is the Content-Type application/json (any parameters)?
func oaIsJSON(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	t := ct[0]
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	return strings.EqualFold(strings.TrimSpace(t), "application/json")
}
