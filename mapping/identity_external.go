package mapping

import (
	"net"
	"slices"
)

// AuthenticateExternal logs in a user whose identity a front has already
// proven by other means than a password: the common name of a TLS client
// certificate that the listener verified against its CA (SASL EXTERNAL,
// as RabbitMQ's rabbitmq_auth_mechanism_ssl). The user must exist; the
// loopback restriction applies as for passwords.
func (r *Router) AuthenticateExternal(user string, remote net.Addr) (*UserInfo, error) {
	id := &r.id
	id.mu.RLock()
	u := id.users[user]
	var cp UserInfo
	if u != nil {
		cp = *u
	}
	id.mu.RUnlock()
	if u == nil {
		return nil, errorf(KindAccessRefused, "user '%s' from the client certificate does not exist", user)
	}
	if slices.Contains(r.loopbackUsers(), user) && !isLoopback(remote) {
		return nil, errorf(KindAccessRefused, "user '%s' can only connect via localhost", user)
	}
	return &cp, nil
}
