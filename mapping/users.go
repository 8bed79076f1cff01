package mapping

import (
	"crypto/subtle"
	"net"
)

// Authenticate checks a user's password for any front. Until the user
// store lands, the only user is guest/guest, and only from loopback
// (RabbitMQ's loopback_users default).
func (r *Router) Authenticate(user, pass string, remote net.Addr) error {
	if subtle.ConstantTimeCompare([]byte(user), []byte("guest")) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte("guest")) != 1 {
		return errorf(KindAccessRefused, "invalid credentials for user '%s'", user)
	}
	if !isLoopback(remote) {
		return errorf(KindAccessRefused, "user 'guest' can only connect via localhost")
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case nil:
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		// net.Pipe and other in-process transports are local.
		return a.Network() == "pipe"
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
