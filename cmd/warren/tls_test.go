package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"
)

// tlsWarren is an in-process Warren with AMQPS and HTTPS next to the
// plain listeners, serving a certificate of its own test CA.
type tlsWarren struct {
	*instance
	pki    *testPKI
	server issued
}

func startTLSWarren(t *testing.T, edit func(*Config)) *tlsWarren {
	t.Helper()
	pki := newTestPKI(t, "warren-test-ca")
	server := pki.issue("localhost", true, "server")
	inst := startWarrenWith(t, "", func(c *Config) {
		c.AMQPSAddr = "127.0.0.1:0"
		c.HTTPSAddr = "127.0.0.1:0"
		c.TLSCert, c.TLSKey, c.TLSCA = server.CertFile, server.KeyFile, pki.CAFile
		c.TLSWatchInterval = -1
		if edit != nil {
			edit(c)
		}
	})
	return &tlsWarren{instance: inst, pki: pki, server: server}
}

func (w *tlsWarren) amqpsURL(userinfo string) string {
	return "amqps://" + userinfo + w.AMQPSAddr() + "/"
}

// roundTrip declares a queue, publishes one message and gets it back.
func roundTrip(t *testing.T, conn *amqp.Connection, queue, body string) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", queue, err)
	}
	if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var got amqp.Delivery
	eventually(t, 5*time.Second, "the message back from "+queue, func() bool {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		got = d
		return ok
	})
	if string(got.Body) != body {
		t.Fatalf("got %q, want %q", got.Body, body)
	}
}

// curlJSON runs curl --cacert against the HTTPS listener, as an operator
// would, and decodes the JSON answer.
func curlJSON(t *testing.T, w *tlsWarren, path string, out any, extra ...string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		needTool(t, "needs curl: "+err.Error())
	}
	args := append([]string{"-sS", "--fail-with-body", "--cacert", w.pki.CAFile, "-u", "guest:guest"}, extra...)
	args = append(args, "https://localhost:"+portOf(t, w.HTTPSAddr())+path)
	cmd := exec.Command("curl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	body, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v: %s%s", path, err, stderr.String(), body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("curl %s: %v: %s", path, err, body)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// apiConnections lists /api/connections over HTTPS.
func apiConnections(t *testing.T, w *tlsWarren) []map[string]any {
	t.Helper()
	var conns []map[string]any
	curlJSON(t, w, "/api/connections", &conns)
	return conns
}

func TestAMQPSGoClient(t *testing.T) {
	t.Parallel()
	w := startTLSWarren(t, nil)

	conn, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), w.pki.clientTLS(nil))
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if st.Version < tls.VersionTLS12 || !st.HandshakeComplete {
		t.Fatalf("TLS state: version %x, handshake complete %v", st.Version, st.HandshakeComplete)
	}
	if st.PeerCertificates[0].SerialNumber.Cmp(w.server.Cert.SerialNumber) != 0 {
		t.Fatalf("server sent certificate %v, want %v", st.PeerCertificates[0].SerialNumber, w.server.Cert.SerialNumber)
	}
	roundTrip(t, conn, "tls-go", "over TLS")

	// A client that offers an ALPN protocol is not turned away for it.
	alpn := w.pki.clientTLS(nil)
	alpn.NextProtos = []string{"amqp"}
	if c, err := tls.Dial("tcp", w.AMQPSAddr(), alpn); err != nil {
		t.Fatalf("TLS with ALPN amqp: %v", err)
	} else {
		c.Close()
	}

	// The same broker keeps serving plain AMQP next to AMQPS.
	plain, err := amqp.Dial(amqpURL(w.instance))
	if err != nil {
		t.Fatalf("plain Dial: %v", err)
	}
	defer plain.Close()

	// The management API (over HTTPS, with curl) shows each connection's
	// TLS state with RabbitMQ's field names.
	var tlsConn, plainConn map[string]any
	eventually(t, 5*time.Second, "both connections in /api/connections", func() bool {
		tlsConn, plainConn = nil, nil
		for _, c := range apiConnections(t, w) {
			if c["ssl"] == true {
				tlsConn = c
			} else {
				plainConn = c
			}
		}
		return tlsConn != nil && plainConn != nil
	})
	wantProto := map[uint16]string{tls.VersionTLS12: "tlsv1.2", tls.VersionTLS13: "tlsv1.3"}[st.Version]
	if tlsConn["ssl_protocol"] != wantProto || tlsConn["ssl_cipher"] != "aes_128_gcm" || tlsConn["ssl_hash"] != "aead" || tlsConn["ssl_key_exchange"] != "any" {
		t.Fatalf("TLS connection fields: protocol %v cipher %v hash %v kx %v (Go negotiated %s)", tlsConn["ssl_protocol"], tlsConn["ssl_cipher"], tlsConn["ssl_hash"], tlsConn["ssl_key_exchange"], tls.CipherSuiteName(st.CipherSuite))
	}
	if tlsConn["peer_cert_subject"] != nil || tlsConn["auth_mechanism"] != "PLAIN" {
		t.Fatalf("no client certificate was sent, yet peer_cert_subject %v; auth_mechanism %v", tlsConn["peer_cert_subject"], tlsConn["auth_mechanism"])
	}
	for _, k := range []string{"ssl_protocol", "ssl_cipher", "ssl_hash", "ssl_key_exchange", "peer_cert_subject", "peer_cert_issuer", "peer_cert_validity"} {
		if v, ok := plainConn[k]; !ok || v != nil {
			t.Fatalf("plain connection %s = %v (present %v), want null as RabbitMQ", k, v, ok)
		}
	}

	// warren ctl over HTTPS trusts the CA given with --cacert, and lists
	// the TLS columns as rabbitmqctl list_connections does.
	httpsBase := "https://localhost:" + portOf(t, w.HTTPSAddr())
	code, out, errs := ctlRun(t, httpsBase, "--cacert", w.pki.CAFile, "list_connections", "user", "ssl", "ssl_protocol")
	if code != 0 || !regexp.MustCompile(`guest +true +`+wantProto).MatchString(out) || !regexp.MustCompile(`guest +false`).MatchString(out) {
		t.Fatalf("warren ctl list_connections over HTTPS: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := ctlRun(t, httpsBase, "list_connections"); code != ctlExitUnavailable || !strings.Contains(errs, "certificate") {
		t.Fatalf("warren ctl without --cacert: exit %d, %s", code, errs)
	}
}

func TestAMQPSRefusals(t *testing.T) {
	t.Parallel()
	w := startTLSWarren(t, nil)

	// A client that does not trust the CA is refused by its own check.
	_, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), &tls.Config{ServerName: "localhost"})
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("DialTLS without the CA: %v, want an unknown-authority error", err)
	}

	// Plain AMQP sent to the TLS port gets no AMQP answer and no crash.
	_, err = amqp.DialConfig("amqp://guest:guest@"+w.AMQPSAddr()+"/", amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
	if err == nil {
		t.Fatal("plain AMQP to the AMQPS port connected")
	}
	raw, err := net.Dial("tcp", w.AMQPSAddr())
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte("AMQP\x00\x00\x09\x01"))
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply := make([]byte, 64)
	n, _ := raw.Read(reply)
	raw.Close()
	if bytes.HasPrefix(reply[:n], []byte("AMQP")) || n > 0 && reply[0] != 0x15 {
		t.Fatalf("plain protocol header on the TLS port answered %q, want a TLS alert or nothing", reply[:n])
	}

	// Go's own client capped at TLS 1.1 is refused too.
	_, err = tls.Dial("tcp", w.AMQPSAddr(), &tls.Config{RootCAs: w.pki.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.1 client: %v, want a protocol version alert", err)
	}

	// After all that the listener still serves a good client.
	conn, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), w.pki.clientTLS(nil))
	if err != nil {
		t.Fatalf("DialTLS after the refusals: %v", err)
	}
	roundTrip(t, conn, "tls-after-refusals", "still here")
	conn.Close()
}

// TestTLSVersionsOpenSSL: TLS 1.1 is refused by the server with a
// protocol-version alert (openssl s_client allowed to offer it), while
// TLS 1.2 and 1.3 from the same tool are accepted, on AMQPS and HTTPS.
func TestTLSVersionsOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		needTool(t, "needs openssl (apt-get install -y openssl; make test does it): "+err.Error())
	}
	t.Parallel()
	w := startTLSWarren(t, nil)
	for _, addr := range []string{w.AMQPSAddr(), w.HTTPSAddr()} {
		out11 := sClient(t, addr, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
		if !strings.Contains(out11, "alert protocol version") {
			t.Fatalf("openssl s_client -tls1_1 to %s was not refused with a protocol version alert:\n%s", addr, out11)
		}
		for _, v := range []string{"1_2", "1_3"} {
			out := sClient(t, addr, "-tls"+v, "-CAfile", w.pki.CAFile)
			if !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "Protocol  : TLSv"+strings.ReplaceAll(v, "_", ".")) {
				t.Fatalf("openssl s_client -tls%s to %s did not connect:\n%s", v, addr, out)
			}
		}
	}
	// ssl_options.versions.1 = tlsv1.3: TLS 1.2 is refused as well.
	w13 := startTLSWarren(t, func(c *Config) { c.TLSVersions = "tlsv1.3" })
	for _, addr := range []string{w13.AMQPSAddr(), w13.HTTPSAddr()} {
		if out := sClient(t, addr, "-tls1_2", "-CAfile", w13.pki.CAFile); !strings.Contains(out, "alert protocol version") {
			t.Fatalf("TLS 1.2 to a TLS 1.3-only listener %s was not refused:\n%s", addr, out)
		}
		if out := sClient(t, addr, "-tls1_3", "-CAfile", w13.pki.CAFile); !strings.Contains(out, "Protocol  : TLSv1.3") {
			t.Fatalf("TLS 1.3 to %s did not connect:\n%s", addr, out)
		}
	}
}

// sClient runs openssl s_client against addr and returns its output.
func sClient(t *testing.T, addr string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", append([]string{"s_client", "-connect", addr, "-servername", "localhost"}, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func TestAMQPSExternalAuth(t *testing.T) {
	t.Parallel()
	w := startTLSWarren(t, func(c *Config) {
		c.TLSVerifyPeer, c.TLSFailIfNoPeerCert = true, true
		// The first start creates this administrator; the client
		// certificate below names it.
		c.DefaultUser, c.DefaultPass = "warren-app", "not-used-by-external"
		// auth_mechanisms.1 = EXTERNAL: no password logins at all.
		c.AuthMechanisms = "EXTERNAL"
	})
	client := w.pki.issue("warren-app", false, "client")

	conn, err := amqp.DialTLS_ExternalAuth(w.amqpsURL(""), w.pki.clientTLS(&client))
	if err != nil {
		t.Fatalf("DialTLS_ExternalAuth: %v", err)
	}
	defer conn.Close()
	roundTrip(t, conn, "tls-external", "as the certificate's CN")

	// With only EXTERNAL allowed, a password is refused even with a
	// valid certificate, and plain AMQP offers no mechanism at all.
	if c, err := amqp.DialTLS(w.amqpsURL("warren-app:not-used-by-external@"), w.pki.clientTLS(&client)); !errors.Is(err, amqp.ErrSASL) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("PLAIN with auth_mechanisms = EXTERNAL: %v, want %v", err, amqp.ErrSASL)
	}
	if c, err := amqp.Dial("amqp://warren-app:not-used-by-external@" + w.AMQPAddr() + "/"); !errors.Is(err, amqp.ErrSASL) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("plain AMQP with auth_mechanisms = EXTERNAL: %v, want %v", err, amqp.ErrSASL)
	}
	// Without a client certificate the handshake itself is refused
	// (fail_if_no_peer_cert).
	if c, err := amqp.DialTLS(w.amqpsURL("warren-app:not-used-by-external@"), w.pki.clientTLS(nil)); err == nil {
		c.Close()
		t.Fatal("connected without a client certificate although fail_if_no_peer_cert is on")
	}
	// A certificate from another CA is refused as well.
	other := newTestPKI(t, "other-ca").issue("warren-app", false, "client")
	if c, err := amqp.DialTLS_ExternalAuth(w.amqpsURL(""), w.pki.clientTLS(&other)); err == nil {
		c.Close()
		t.Fatal("connected with a client certificate of an unknown CA")
	}
	// A certificate for a user that does not exist is a refused login.
	ghost := w.pki.issue("no-such-user", false, "ghost")
	if c, err := amqp.DialTLS_ExternalAuth(w.amqpsURL(""), w.pki.clientTLS(&ghost)); err == nil {
		c.Close()
		t.Fatal("EXTERNAL login for a user that does not exist succeeded")
	}

	// The management API shows the mechanism and the certificate.
	var conns []map[string]any
	eventually(t, 5*time.Second, "the EXTERNAL connection in /api/connections", func() bool {
		var all []map[string]any
		curlJSON(t, w, "/api/connections", &all, "-u", "warren-app:not-used-by-external")
		conns = all
		return len(all) == 1
	})
	c := conns[0]
	if c["user"] != "warren-app" || c["auth_mechanism"] != "EXTERNAL" || c["ssl"] != true {
		t.Fatalf("connection user %v mechanism %v ssl %v", c["user"], c["auth_mechanism"], c["ssl"])
	}
	if c["peer_cert_subject"] != "CN=warren-app,O=Warren tests" || c["peer_cert_issuer"] != "CN=warren-test-ca,O=Warren tests" {
		t.Fatalf("peer_cert_subject %v issuer %v", c["peer_cert_subject"], c["peer_cert_issuer"])
	}
	if v, _ := c["peer_cert_validity"].(string); !strings.Contains(v, " - ") {
		t.Fatalf("peer_cert_validity %q", v)
	}
}

func TestAMQPSPika(t *testing.T) {
	needPika(t)
	t.Parallel()
	w := startTLSWarren(t, nil)
	code := `import sys, ssl, pika
ctx = ssl.create_default_context(cafile=sys.argv[2])
params = pika.ConnectionParameters(host="localhost", port=int(sys.argv[1]),
    credentials=pika.PlainCredentials("guest", "guest"),
    ssl_options=pika.SSLOptions(ctx, "localhost"))
c = pika.BlockingConnection(params)
ch = c.channel()
ch.queue_declare(queue="tls-pika", auto_delete=True)
ch.basic_publish(exchange="", routing_key="tls-pika", body=b"pika over TLS")
for _ in range(100):
    m, props, body = ch.basic_get(queue="tls-pika", auto_ack=True)
    if m:
        print(body.decode())
        break
    c.sleep(0.05)
print(c._impl._transport._sock.version())
c.close()
`
	out, err := exec.Command(pythonBin, "-c", code, portOf(t, w.AMQPSAddr()), w.pki.CAFile).CombinedOutput()
	if err != nil {
		t.Fatalf("pika over TLS: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "pika over TLS" || !strings.HasPrefix(lines[1], "TLSv1.") || lines[1] < "TLSv1.2" {
		t.Fatalf("pika printed %q", lines)
	}
}

func TestHTTPSAndWSS(t *testing.T) {
	t.Parallel()
	w := startTLSWarren(t, nil)

	var overview map[string]any
	curlJSON(t, w, "/api/overview", &overview)
	if overview["management_version"] == nil && overview["rabbitmq_version"] == nil {
		t.Fatalf("/api/overview over HTTPS: %v", overview)
	}
	// curl without the CA refuses the server (exit 60: peer certificate
	// cannot be authenticated).
	cmd := exec.Command("curl", "-sS", "-u", "guest:guest", "https://localhost:"+portOf(t, w.HTTPSAddr())+"/api/overview")
	if err := cmd.Run(); err == nil {
		t.Fatal("curl without --cacert trusted the test CA")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 60 {
		t.Fatalf("curl without --cacert: %v, want exit 60", err)
	}

	// Plain HTTP to the HTTPS port gets a 400 that says so.
	plain, err := exec.Command("curl", "-sS", "-w", " %{http_code}", "http://localhost:"+portOf(t, w.HTTPSAddr())+"/api/overview").Output()
	if err != nil || !strings.HasSuffix(string(plain), " 400") || !strings.Contains(string(plain), "HTTPS") {
		t.Fatalf("plain HTTP to the HTTPS port: %v %q", err, plain)
	}

	// The Warren WebSocket protocol over WSS, published to from AMQPS.
	d := websocket.Dialer{Subprotocols: []string{"warren.v1"}, HandshakeTimeout: wsTimeout, TLSClientConfig: w.pki.clientTLS(nil)}
	ws, _, err := d.Dial("wss://localhost:"+portOf(t, w.HTTPSAddr())+"/v1/ws", guestHeader())
	if err != nil {
		t.Fatalf("dial wss /v1/ws: %v", err)
	}
	c := &wsTestClient{t: t, ws: ws, done: make(chan struct{}), more: make(chan struct{}, 1)}
	go c.readLoop()
	t.Cleanup(func() { ws.Close(); <-c.done })
	c.expect("welcome", nil)
	c.call(map[string]any{"op": "subscribe", "exchange": "amq.topic", "binding_key": "tls.wss"})
	conn, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), w.pki.clientTLS(nil))
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := ch.Publish("amq.topic", "tls.wss", false, false, amqp.Publishing{Body: []byte("to wss")}); err != nil {
		t.Fatal(err)
	}
	msg := c.expect("message", nil)
	if msg["payload"] != "to wss" {
		t.Fatalf("WSS message %v", msg)
	}

	// Server-Sent Events over HTTPS, read by curl until its time limit.
	if _, err := ch.QueueDeclare("tls-sse", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "tls-sse", false, false, amqp.Publishing{Body: []byte("sse over https")}); err != nil {
		t.Fatal(err)
	}
	sse, _ := exec.Command("curl", "-sS", "-N", "-m", "2", "--cacert", w.pki.CAFile, "-u", "guest:guest",
		"https://localhost:"+portOf(t, w.HTTPSAddr())+"/v1/events?queue=tls-sse").Output()
	if !strings.Contains(string(sse), "sse over https") {
		t.Fatalf("SSE over HTTPS: %q", sse)
	}

	// STOMP over WSS.
	sd := websocket.Dialer{Subprotocols: []string{"v12.stomp"}, HandshakeTimeout: wsTimeout, TLSClientConfig: w.pki.clientTLS(nil)}
	sws, _, err := sd.Dial("wss://localhost:"+portOf(t, w.HTTPSAddr())+"/ws", nil)
	if err != nil {
		t.Fatalf("dial wss /ws: %v", err)
	}
	t.Cleanup(func() { sws.Close() })
	sc := &stompClient{t: t, ws: sws}
	sc.connect()
	sc.send("SUBSCRIBE", "", "id", "0", "destination", "/queue/tls-stomp")
	sc.send("SEND", "stomp over wss", "destination", "/queue/tls-stomp", "receipt", "r1")
	got := map[string]string{}
	for len(got) < 2 {
		f, err := sc.next()
		if err != nil {
			t.Fatalf("STOMP over WSS: %v (so far %v)", err, got)
		}
		got[f.cmd] = f.body
	}
	if body, ok := got["MESSAGE"]; !ok || body != "stomp over wss" {
		t.Fatalf("STOMP over WSS frames %v, want RECEIPT and MESSAGE \"stomp over wss\"", got)
	}

	// Both WebSocket sessions are TLS connections in the management API.
	eventually(t, 5*time.Second, "WSS sessions listed with ssl", func() bool {
		n := 0
		for _, c := range apiConnections(t, w) {
			if c["ssl"] == true && c["protocol"] != "AMQP 0-9-1" {
				n++
			}
		}
		return n == 2
	})
}

// TestTLSCertificateReload renews the server certificate twice, by
// SIGHUP's path and by changing the files under the watcher: the old
// connection stays up, new handshakes get the new certificate.
func TestTLSCertificateReload(t *testing.T) {
	t.Parallel()
	w := startTLSWarren(t, func(c *Config) { c.TLSWatchInterval = 50 * time.Millisecond })
	old, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), w.pki.clientTLS(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	roundTrip(t, old, "tls-reload-old", "before")

	serial := func(addr string) string {
		c, err := tls.Dial("tcp", addr, w.pki.clientTLS(nil))
		if err != nil {
			t.Fatalf("tls.Dial %s: %v", addr, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}

	// A renewal written in place is picked up by the watcher, for AMQPS
	// and HTTPS alike.
	renewed := w.pki.issue("localhost", true, "server")
	want := renewed.Cert.SerialNumber.String()
	eventually(t, 10*time.Second, "AMQPS to serve the renewed certificate", func() bool { return serial(w.AMQPSAddr()) == want })
	eventually(t, 10*time.Second, "HTTPS to serve the renewed certificate", func() bool { return serial(w.HTTPSAddr()) == want })
	roundTrip(t, old, "tls-reload-old", "after the watcher's reload")

	// A broken file (a key that does not match) keeps the current one.
	other := w.pki.issue("localhost", true, "other")
	keyPEM, _ := os.ReadFile(other.KeyFile)
	if err := os.WriteFile(w.server.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	w.ReloadTLS("test: mismatched key")
	if got := serial(w.AMQPSAddr()); got != want {
		t.Fatalf("after a failed reload the server sends %s, want the previous %s", got, want)
	}

	// SIGHUP's path: the files renewed again, then ReloadTLS.
	again := w.pki.issue("localhost", true, "server")
	w.ReloadTLS("SIGHUP")
	if got := serial(w.AMQPSAddr()); got != again.Cert.SerialNumber.String() {
		t.Fatalf("after ReloadTLS the server sends %s, want %s", got, again.Cert.SerialNumber)
	}
	fresh, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), w.pki.clientTLS(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if s := fresh.ConnectionState().PeerCertificates[0].SerialNumber.String(); s != again.Cert.SerialNumber.String() {
		t.Fatalf("new AMQPS connection got certificate %s, want %s", s, again.Cert.SerialNumber)
	}
	if s := old.ConnectionState().PeerCertificates[0].SerialNumber.String(); s != w.server.Cert.SerialNumber.String() {
		t.Fatalf("the old connection's certificate changed to %s", s)
	}
	roundTrip(t, old, "tls-reload-old", "after two renewals")
	roundTrip(t, fresh, "tls-reload-new", "new connection")
}

// TestManagementUITLS: the UI's connection list and detail show the TLS
// state and client certificate of an AMQPS connection logged in with
// EXTERNAL. The page itself is served over HTTPS, whose certificate the
// browser is told to accept (it does not know the test CA).
func TestManagementUITLS(t *testing.T) {
	chromiumPath(t)
	t.Parallel()
	w := startTLSWarren(t, func(c *Config) { c.TLSVerifyPeer = true })
	client := w.pki.issue("guest", false, "client")
	conn, err := amqp.DialTLS_ExternalAuth(w.amqpsURL(""), w.pki.clientTLS(&client))
	if err != nil {
		t.Fatalf("EXTERNAL as guest: %v", err)
	}
	defer conn.Close()

	base := "https://localhost:" + portOf(t, w.HTTPSAddr())
	p := newUIPage(t, base, chromedp.Flag("ignore-certificate-errors", true))
	p.do("open the UI over HTTPS", chromedp.Navigate(base+"/"))
	p.login("guest", "guest")
	p.open("#/connections")
	p.contains("table.data tbody", "guest", "TLS 1.")
	p.do("select the connection", uiClick("a.conn-link"))
	p.contains("#connection-tls", "TLS 1.", "aes_128_gcm")
	p.contains("#connection-detail", "EXTERNAL", "CN=guest,O=Warren tests", "CN=warren-test-ca")
}

// TestWSSNodeClients: the Warren JS client and @stomp/stompjs, unchanged,
// over WSS; node trusts the test CA through NODE_EXTRA_CA_CERTS.
func TestWSSNodeClients(t *testing.T) {
	dir := jsTestDir(t)
	t.Parallel()
	w := startTLSWarren(t, nil)
	wss := "wss://localhost:" + portOf(t, w.HTTPSAddr())
	conn, err := amqp.DialTLS(w.amqpsURL("guest:guest@"), w.pki.clientTLS(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		script, url, key string
		args             []string
		ready            []string
	}{
		{"warren_node.mjs", wss + "/v1/ws", "node.a", nil, []string{"open", "subscribed"}},
		{"stomp_amqp.mjs", wss + "/ws", "kern.critical", []string{"guest", "guest"}, []string{"connected", "subscribed"}},
	} {
		steps := startNodeScript(t, dir, w.pki.CAFile, tc.script, append([]string{tc.url}, tc.args...)...)
		for _, s := range tc.ready {
			steps.want(s)
		}
		if err := ch.Publish("amq.topic", tc.key, false, false, amqp.Publishing{Body: []byte("over wss"), ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		if m := steps.want("message"); m["body"] != "over wss" {
			t.Fatalf("%s: message %v", tc.script, m)
		}
	}
}

// nodeSteps reads a node script's JSON lines.
type nodeSteps struct {
	t      *testing.T
	name   string
	lines  chan map[string]any
	stderr *lockedBuffer
}

func startNodeScript(t *testing.T, dir, caFile, script string, args ...string) *nodeSteps {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+caFile)
	s := &nodeSteps{t: t, name: script, lines: make(chan map[string]any, 64), stderr: &lockedBuffer{}}
	cmd.Stderr = s.stderr
	stdin, _ := cmd.StdinPipe() // open until the test ends: the scripts stop on "bye" or EOF
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, s.stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				s.lines <- m
			}
		}
		close(s.lines)
	}()
	return s
}

func (s *nodeSteps) want(step string) map[string]any {
	s.t.Helper()
	for {
		select {
		case m, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("%s exited before %q", s.name, step)
			}
			if m["step"] == step {
				return m
			}
			if m["step"] == "failed" || m["step"] == "timeout" || m["step"] == "error" {
				s.t.Fatalf("%s: %v", s.name, m)
			}
		case <-time.After(20 * time.Second):
			s.t.Fatalf("%s: no %q", s.name, step)
		}
	}
}

var amqpsReadyLine = regexp.MustCompile(`warren ready.* amqps=(\S+)`)

// TestSIGHUPReloadsCertificate runs the warren binary from a config file
// (found through WARREN_CONFIG, with the file watcher off) and renews its
// certificate with SIGHUP while a connection stays open.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	bin, err := warrenBinary()
	if err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t, "sighup-ca")
	server := pki.issue("localhost", true, "server")
	conf := writeConf(t, "ssl_options.certfile = "+server.CertFile+"\nssl_options.keyfile = "+server.KeyFile+
		"\nwarren.tls_watch_interval = 0\nwarren.data_dir = "+t.TempDir()+"\nmanagement.rates_mode = basic\n")
	cmd := exec.Command(bin, "serve", "--amqp-addr", "none", "--amqps-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "none")
	cmd.Env = append(os.Environ(), "WARREN_CONFIG="+conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logLines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logLines <- sc.Text()
		}
		close(logLines)
	}()
	waitLog := func(re *regexp.Regexp) []string {
		t.Helper()
		for {
			select {
			case l, ok := <-logLines:
				if !ok {
					t.Fatalf("warren exited before logging %s", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no log line %s", re)
			}
		}
	}
	waitLog(regexp.MustCompile(`line 5: unknown key \\"management.rates_mode\\" ignored`))
	addr := waitLog(amqpsReadyLine)[1]

	old, err := amqp.DialTLS("amqps://guest:guest@"+addr+"/", pki.clientTLS(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	roundTrip(t, old, "sighup-old", "before")

	renewed := pki.issue("localhost", true, "server")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(regexp.MustCompile(`TLS certificate reloaded"? listener=AMQPS reason=SIGHUP`))
	fresh, err := amqp.DialTLS("amqps://guest:guest@"+addr+"/", pki.clientTLS(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if got := fresh.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Fatalf("after SIGHUP a new connection got certificate %v, want %v", got, renewed.Cert.SerialNumber)
	}
	roundTrip(t, old, "sighup-old", "after SIGHUP, same connection")
	roundTrip(t, fresh, "sighup-new", "new connection")
}

// TestConnectionTLSFieldsLikeRabbitMQ compares a plain connection's TLS
// fields in /api/connections with those of the reference RabbitMQ (which
// has no TLS listener, so only the plain case can be compared). It runs
// when WARREN_TEST_RABBITMQ_URL (AMQP) and WARREN_TEST_RABBITMQ_MGMT_URL
// (management API base with credentials) are set.
func TestConnectionTLSFieldsLikeRabbitMQ(t *testing.T) {
	rmqURL, rmqMgmt := os.Getenv("WARREN_TEST_RABBITMQ_URL"), os.Getenv("WARREN_TEST_RABBITMQ_MGMT_URL")
	if rmqURL == "" || rmqMgmt == "" {
		t.Skip("set WARREN_TEST_RABBITMQ_URL and WARREN_TEST_RABBITMQ_MGMT_URL (e.g. amqp://guest:guest@127.0.0.1:5673/ and http://guest:guest@127.0.0.1:15673) to compare with RabbitMQ")
	}
	t.Parallel()
	keys := []string{"ssl", "ssl_protocol", "ssl_key_exchange", "ssl_cipher", "ssl_hash", "peer_cert_subject", "peer_cert_issuer", "peer_cert_validity", "auth_mechanism"}
	fields := func(amqpURL, mgmtBase string) map[string]any {
		t.Helper()
		conn, err := amqp.DialConfig(amqpURL, amqp.Config{Properties: amqp.Table{"connection_name": "tls-compare"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var found map[string]any
		eventually(t, 20*time.Second, "the connection in "+mgmtBase+"/api/connections", func() bool {
			resp, err := http.Get(mgmtBase + "/api/connections")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var all []map[string]any
			json.NewDecoder(resp.Body).Decode(&all)
			for _, c := range all {
				if p, _ := c["client_properties"].(map[string]any); p["connection_name"] == "tls-compare" {
					found = c
				}
			}
			return found != nil
		})
		out := map[string]any{}
		for _, k := range keys {
			v, ok := found[k]
			out[k] = fmt.Sprintf("%v (present %v)", v, ok)
		}
		return out
	}
	w := startWarren(t, "")
	want := fields(rmqURL, rmqMgmt)
	got := fields(amqpURL(w), "http://guest:guest@"+w.HTTPAddr())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Warren's TLS fields %v, RabbitMQ's %v", got, want)
	}
}

// BenchmarkAMQPPublishTLS publishes 1 KiB messages with confirms over
// plain AMQP and over AMQPS to the same broker; compare the two ns/op.
func BenchmarkAMQPPublishTLS(b *testing.B) {
	pki := newTestPKI(b, "bench-ca")
	server := pki.issue("localhost", true, "server")
	inst := startWarrenWith(b, "", func(c *Config) {
		c.AMQPSAddr, c.TLSCert, c.TLSKey, c.TLSWatchInterval = "127.0.0.1:0", server.CertFile, server.KeyFile, -1
		c.Sync = "interval"
	})
	body := bytes.Repeat([]byte("x"), 1024)
	for _, bc := range []struct {
		name string
		dial func() (*amqp.Connection, error)
	}{
		{"plain", func() (*amqp.Connection, error) { return amqp.Dial(amqpURL(inst)) }},
		{"tls", func() (*amqp.Connection, error) {
			return amqp.DialTLS("amqps://guest:guest@"+inst.AMQPSAddr()+"/", pki.clientTLS(nil))
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			conn, err := bc.dial()
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ch, _ := conn.Channel()
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			ch.Confirm(false)
			confirms := ch.NotifyPublish(make(chan amqp.Confirmation, b.N+1))
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: body}); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < b.N; i++ {
				if c := <-confirms; !c.Ack {
					b.Fatal("nack")
				}
			}
		})
	}
}
