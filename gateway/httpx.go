package gateway

import "github.com/warrenmq/warren/gateway/internal/httpx"

// ErrorBody is every error response of the HTTP API (gateway/internal/httpx).
type ErrorBody = httpx.ErrorBody
