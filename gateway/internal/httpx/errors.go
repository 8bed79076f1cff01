package httpx

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
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

var StatusNames = map[int]string{
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

// APIError is an error with a status, made by handlers.
func APIError(status int, reason string) error {
	return &echo.HTTPError{Code: status, Message: reason}
}

// refusalStatus maps the publish refusals that have an HTTP status of their
// own; the others (access, bad message, no exchange) answer by their Kind.
// The error name of these answers is the refusal's ("alarm", "queue_full",
// "store_failure"), so that a client can tell them apart.
var refusalStatus = map[mapping.Refusal]int{
	mapping.RefusedAlarm:        http.StatusTooManyRequests,
	mapping.RefusedQueueFull:    http.StatusTooManyRequests,
	mapping.RefusedStoreFailure: http.StatusServiceUnavailable,
}

// retryAfter is the Retry-After of a retryable refusal, in seconds: the
// alarm sampler runs every second, a full queue drains at its consumers'
// pace.
var retryAfter = map[mapping.Refusal]string{
	mapping.RefusedAlarm:     "5",
	mapping.RefusedQueueFull: "1",
}

// ErrorStatus is the one table of the HTTP fronts (REST, management API,
// and the codes of WS error frames and STOMP ERROR frames): the status and
// error name of any error.
func ErrorStatus(err error) (int, string) {
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Internal == nil {
		return he.Code, StatusName(he.Code)
	}
	var ce *msgcodec.Error
	if errors.As(err, &ce) {
		return http.StatusBadRequest, StatusName(http.StatusBadRequest)
	}
	if r := mapping.RefusalOf(err); r != mapping.NotRefused {
		if status, ok := refusalStatus[r]; ok {
			return status, r.String()
		}
	}
	if he != nil {
		return he.Code, StatusName(he.Code)
	}
	status, ok := kindStatus[mapping.KindOf(err)]
	if !ok {
		status = http.StatusInternalServerError
	}
	return status, StatusName(status)
}

func StatusName(status int) string {
	if n := StatusNames[status]; n != "" {
		return n
	}
	return http.StatusText(status)
}

// CoreError converts an error from package mapping to an HTTP error.
func CoreError(err error) error {
	if err == nil {
		return nil
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he
	}
	status, _ := ErrorStatus(err)
	return &echo.HTTPError{Code: status, Message: err.Error(), Internal: err}
}

// SetRetryAfter adds Retry-After to the response when err is a retryable
// publish refusal.
func SetRetryAfter(c echo.Context, err error) {
	if s := retryAfter[mapping.RefusalOf(err)]; s != "" && c != nil {
		c.Response().Header().Set("Retry-After", s)
	}
}

// ErrorHandler writes every error as ErrorBody JSON with the right status.
func ErrorHandler(logger *slog.Logger) func(err error, c echo.Context) {
	return func(err error, c echo.Context) { errorHandler(logger, err, c) }
}

func errorHandler(logger *slog.Logger, err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	SetRetryAfter(c, err)
	status, name := ErrorStatus(err)
	err = CoreError(err)
	he, _ := err.(*echo.HTTPError)
	reason := http.StatusText(status)
	switch m := he.Message.(type) {
	case string:
		reason = m
	case error:
		reason = m.Error()
	}
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout && status != http.StatusNotImplemented {
		logger.Error("HTTP handler failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
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
