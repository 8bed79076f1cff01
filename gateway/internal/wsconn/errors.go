package wsconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
)

// Error is an error frame's content.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an error frame's content with code.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode maps any error to (code, name, message).
func ErrorCode(err error) (int, string, string) {
	var we *Error
	if errors.As(err, &we) {
		return we.Code, wsStatusName(we.Code), we.Message
	}
	status, name := httpx.ErrorStatus(err)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return status, name, fmt.Sprint(he.Message)
	}
	return status, name, err.Error()
}

func wsStatusName(code int) string {
	if n := httpx.StatusNames[code]; n != "" {
		return n
	}
	if code == http.StatusUnauthorized {
		return "not_authorised"
	}
	return http.StatusText(code)
}

func wsJSONEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
