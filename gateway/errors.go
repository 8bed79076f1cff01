package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

// ErrorBody is every error response of the HTTP API: a short error name
// and a reason a person can act on (RabbitMQ's management API shape).
type ErrorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// kindStatus maps the core's error kinds to HTTP statuses: the one table
// for this front (DESIGN.md: errors mean the same on every front).
var kindStatus = map[mapping.Kind]int{
	mapping.KindNotFound:           http.StatusNotFound,
	mapping.KindAccessRefused:      http.StatusForbidden,
	mapping.KindResourceLocked:     http.StatusLocked,
	mapping.KindPreconditionFailed: http.StatusConflict,
	mapping.KindNotAllowed:         http.StatusForbidden,
	mapping.KindCommandInvalid:     http.StatusBadRequest,
	mapping.KindNotImplemented:     http.StatusNotImplemented,
	mapping.KindResourceError:      http.StatusServiceUnavailable,
	mapping.KindInternal:           http.StatusInternalServerError,
}

var statusNames = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "not_authorised",
	http.StatusForbidden:             "access_refused",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              "precondition_failed",
	http.StatusPreconditionFailed:    "precondition_failed",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusLocked:                "resource_locked",
	http.StatusTooManyRequests:       "too_many_requests",
	http.StatusNotImplemented:        "not_implemented",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusGatewayTimeout:        "timeout",
	http.StatusInternalServerError:   "internal_error",
}

// apiError is an error with a status, made by handlers.
func apiError(status int, reason string) error {
	return &echo.HTTPError{Code: status, Message: reason}
}

// coreError converts an error from package mapping to an HTTP error.
func coreError(err error) error {
	if err == nil {
		return nil
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he
	}
	status, ok := kindStatus[mapping.KindOf(err)]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &echo.HTTPError{Code: status, Message: err.Error(), Internal: err}
}

// errorHandler writes every error as ErrorBody JSON with the right status.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	err = coreError(err)
	he, _ := err.(*echo.HTTPError)
	status := he.Code
	reason := http.StatusText(status)
	switch m := he.Message.(type) {
	case string:
		reason = m
	case error:
		reason = m.Error()
	}
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout && status != http.StatusNotImplemented {
		s.cfg.Logger.Error("HTTP handler failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	name := statusNames[status]
	if name == "" {
		name = http.StatusText(status)
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="Warren"`)
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, ErrorBody{Error: name, Reason: reason})
}
