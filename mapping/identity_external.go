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
	cp, ok := r.userCopy(user)
	if !ok {
		return nil, errorf(KindAccessRefused, "user '%s' from the client certificate does not exist", user)
	}
	if err := r.checkLoopbackUser(user, remote); err != nil {
		return nil, err
	}
	return &cp, nil
}

// userCopy is a copy of the named user's record.
func (r *Router) userCopy(name string) (UserInfo, bool) {
	r.id.mu.RLock()
	defer r.id.mu.RUnlock()
	u := r.id.users[name]
	if u == nil {
		return UserInfo{}, false
	}
	return *u, true
}

// checkLoopbackUser refuses users of Config.LoopbackUsers (default:
// guest) that connect from elsewhere than loopback, as RabbitMQ's
// loopback_users.
func (r *Router) checkLoopbackUser(user string, remote net.Addr) error {
	if slices.Contains(r.loopbackUsers(), user) && !isLoopback(remote) {
		return errorf(KindAccessRefused, "user '%s' can only connect via localhost", user)
	}
	return nil
}
