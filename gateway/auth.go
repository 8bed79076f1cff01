package gateway

import (
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

// userKey is where authenticate leaves the user in the echo context.
const userKey = "warren.user"

// failedLoginDelay is how long a refused login waits before its answer.
const failedLoginDelay = 500 * time.Millisecond

// remoteAddr is the client's address for loopback-only users.
func remoteAddr(c echo.Context) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", c.Request().RemoteAddr)
	if err != nil {
		return nil
	}
	return a
}

// authenticate checks HTTP basic credentials against Warren's users.
// Other fronts' helpers (tokens for WebSocket) can call checkCredentials.
func (s *Server) authenticate(c echo.Context) (*mapping.UserInfo, error) {
	if u, ok := c.Get(userKey).(*mapping.UserInfo); ok {
		return u, nil
	}
	user, pass, ok := c.Request().BasicAuth()
	if !ok {
		return nil, apiError(http.StatusUnauthorized, "this endpoint needs HTTP basic authentication with a Warren user")
	}
	u, err := s.checkCredentials(c, user, pass)
	if err != nil {
		return nil, err
	}
	c.Set(userKey, u)
	return u, nil
}

func (s *Server) checkCredentials(c echo.Context, user, pass string) (*mapping.UserInfo, error) {
	u, err := s.router.Authenticate(user, pass, remoteAddr(c))
	if err != nil {
		s.cfg.Logger.Warn("HTTP login refused", "user", user, "remote", c.Request().RemoteAddr, "reason", err)
		// Slow down password guessing, as the AMQP front does.
		select {
		case <-time.After(failedLoginDelay):
		case <-c.Request().Context().Done():
		}
		return nil, apiError(http.StatusUnauthorized, "login refused: "+err.Error())
	}
	return u, nil
}

// requireUser is middleware that authenticates every request of a group.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.authenticate(c); err != nil {
			return err
		}
		return next(c)
	}
}
