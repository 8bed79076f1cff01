package validate

import "github.com/warrenmq/warren/gateway/internal/httpx"

// apiError is the shared HTTP error constructor (gateway/internal/httpx).
var apiError = httpx.APIError
