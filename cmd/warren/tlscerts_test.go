package main

// Test certificates, made per test in t.TempDir(): a CA, server
// certificates for 127.0.0.1/localhost and client certificates whose CN
// is the user name for SASL EXTERNAL. No key is ever committed.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

type testPKI struct {
	t      testing.TB
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	Pool   *x509.CertPool
}

var testSerial atomic.Int64

func newTestPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	tmpl := certTemplate(name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, key := signCert(t, tmpl, nil, nil)
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{t: t, dir: t.TempDir(), ca: ca, caKey: key, Pool: x509.NewCertPool()}
	p.Pool.AddCert(ca)
	p.CAFile = filepath.Join(p.dir, name+"-ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// certTemplate is a day-long certificate for cn with a fresh serial.
func certTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(testSerial.Add(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Warren tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
}

// signCert makes a P-256 key for tmpl and signs it with parent (nil:
// self-signed).
func signCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// issued is a certificate with its files and its parsed form.
type issued struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
	TLS               tls.Certificate
}

// issue signs a certificate for cn: a server certificate (127.0.0.1,
// ::1, localhost) or a client one. Files go to dir/<file>.pem and
// dir/<file>-key.pem (overwritten, as a renewal does).
func (p *testPKI) issue(cn string, server bool, file string) issued {
	p.t.Helper()
	if server {
		return p.issueFor(cn, file, x509.ExtKeyUsageServerAuth)
	}
	return p.issueFor(cn, file, x509.ExtKeyUsageClientAuth)
}

// issueFor is issue with the extended key usages given (a cluster
// route's certificate serves both ends: server and client auth); one
// with server auth is for the loopback names.
func (p *testPKI) issueFor(cn, file string, usage ...x509.ExtKeyUsage) issued {
	t := p.t
	t.Helper()
	tmpl := certTemplate(cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	if slices.Contains(usage, x509.ExtKeyUsageServerAuth) {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, key := signCert(t, tmpl, p.ca, p.caKey)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := issued{CertFile: filepath.Join(p.dir, file+".pem"), KeyFile: filepath.Join(p.dir, file+"-key.pem")}
	out.Cert, _ = x509.ParseCertificate(der)
	// Key first, then certificate: a watcher that looks in between sees
	// a pair that does not match and keeps the old one.
	writePEM(t, out.KeyFile, "EC PRIVATE KEY", kder)
	writePEM(t, out.CertFile, "CERTIFICATE", der)
	out.TLS, err = tls.LoadX509KeyPair(out.CertFile, out.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientTLS trusts the PKI's CA and, when given, presents a client
// certificate.
func (p *testPKI) clientTLS(client *issued) *tls.Config {
	c := &tls.Config{RootCAs: p.Pool, ServerName: "localhost"}
	if client != nil {
		c.Certificates = []tls.Certificate{client.TLS}
	}
	return c
}
