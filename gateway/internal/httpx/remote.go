package httpx

import (
	"net"

	"github.com/labstack/echo/v4"
)

// RemoteAddr is the client's address for loopback-only users.
func RemoteAddr(c echo.Context) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", c.Request().RemoteAddr)
	if err != nil {
		return nil
	}
	return a
}
