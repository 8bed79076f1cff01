package mgmt

import (
	"crypto/tls"
	"strings"
	"time"
)

// mgTLSFields are a connection's TLS fields as RabbitMQ's /api/connections
// shows them: ssl, ssl_protocol ("tlsv1.3"), ssl_key_exchange, ssl_cipher,
// ssl_hash (Erlang's names for the parts of the cipher suite) and the
// peer certificate's subject, issuer and validity; null when plain.
func mgTLSFields(st *tls.ConnectionState) map[string]any {
	out := map[string]any{
		"ssl": st != nil, "ssl_protocol": nil, "ssl_key_exchange": nil, "ssl_cipher": nil, "ssl_hash": nil,
		"peer_cert_subject": nil, "peer_cert_issuer": nil, "peer_cert_validity": nil,
	}
	if st == nil {
		return out
	}
	out["ssl_protocol"] = mgTLSVersion(st.Version)
	kx, cipher, hash := mgCipherSuiteParts(tls.CipherSuiteName(st.CipherSuite))
	out["ssl_key_exchange"], out["ssl_cipher"], out["ssl_hash"] = kx, cipher, hash
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		out["peer_cert_subject"] = c.Subject.String()
		out["peer_cert_issuer"] = c.Issuer.String()
		out["peer_cert_validity"] = c.NotBefore.UTC().Format(time.RFC3339) + " - " + c.NotAfter.UTC().Format(time.RFC3339)
	}
	return out
}

func mgTLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "tlsv1.2"
	case tls.VersionTLS13:
		return "tlsv1.3"
	}
	return strings.ToLower(strings.ReplaceAll(tls.VersionName(v), " ", "v"))
}

// mgCipherSuiteParts splits a Go cipher suite name the way Erlang names
// the parts: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 is ecdhe_rsa,
// aes_128_gcm, aead; TLS 1.3's TLS_AES_256_GCM_SHA384 (no key exchange in
// the name) is any, aes_256_gcm, aead; a CBC suite's hash is its MAC.
func mgCipherSuiteParts(name string) (kx, cipher, hash string) {
	name = strings.ToLower(strings.TrimPrefix(name, "TLS_"))
	kx = "any"
	if k, rest, ok := strings.Cut(name, "_with_"); ok {
		kx, name = k, rest
	}
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return kx, name, "aead"
	}
	cipher, hash = name[:i], name[i+1:]
	if strings.Contains(cipher, "gcm") || strings.Contains(cipher, "poly1305") || strings.Contains(cipher, "ccm") {
		hash = "aead"
	}
	return kx, cipher, hash
}
