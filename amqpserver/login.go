package amqpserver

import (
	"crypto/tls"
	"slices"
	"strings"

	"github.com/warrenmq/warren/amqpserver/wire"
)

// tlsState is the connection's TLS state once the TLS handshake is done
// (reading the protocol header completes it), or nil on a plain socket.
func (c *conn) tlsState() *tls.ConnectionState {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete {
		return nil
	}
	return &st
}

// peerCommonName is the CN of the client certificate the TLS listener
// verified, or "" when the client sent none. A listener that does not
// verify client certificates does not ask for one, so a certificate here
// has been checked against the CA.
func (c *conn) peerCommonName() string {
	st := c.tlsState()
	if st == nil || len(st.PeerCertificates) == 0 || len(st.VerifiedChains) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// mechanismAllowed: Config.Mechanisms, when set, is the whole list.
func (c *conn) mechanismAllowed(m string) bool {
	return c.s.cfg.Mechanisms == nil || slices.Contains(c.s.cfg.Mechanisms, m)
}

// mechanisms lists the SASL mechanisms offered in connection.start:
// EXTERNAL only when the client presented a verified certificate.
func (c *conn) mechanisms() string {
	var out []string
	for _, m := range []string{"PLAIN", "AMQPLAIN", "EXTERNAL"} {
		if c.mechanismAllowed(m) && (m != "EXTERNAL" || c.peerCommonName() != "") {
			out = append(out, m)
		}
	}
	return strings.Join(out, " ")
}

// login authenticates connection.start-ok. An *amqpError is a malformed
// or unsupported response; any other error is a refused login, for which
// the user name (if known) is returned for the log.
func (c *conn) login(so *wire.ConnectionStartOk) (string, error) {
	c.mechanism = so.Mechanism
	if !c.mechanismAllowed(so.Mechanism) {
		return "", newError(wire.AccessRefused, so, "unsupported authentication mechanism '%s'", so.Mechanism)
	}
	if so.Mechanism == "EXTERNAL" {
		// As rabbitmq_auth_mechanism_ssl: the user is the certificate's
		// common name; the response carries nothing we use.
		user := c.peerCommonName()
		if user == "" {
			return "", newError(wire.AccessRefused, so, "EXTERNAL login needs a verified TLS client certificate")
		}
		_, err := c.s.router.AuthenticateExternal(user, c.nc.RemoteAddr())
		return user, err
	}
	user, pass, err := parseCredentials(so.Mechanism, so.Response)
	if err != nil {
		return "", newError(wire.AccessRefused, so, "%v", err)
	}
	_, err = c.s.router.Authenticate(user, pass, c.nc.RemoteAddr())
	return user, err
}
