package gateway

import (
	"bytes"
	"log"
	"log/slog"
)

// httpErrorLog routes net/http's own error messages to the server's
// logger instead of stderr. Failed TLS handshakes (port scanners, clients
// that do not trust the certificate, plain HTTP sent to the HTTPS port)
// are routine on a public listener and go to debug; the rest are warnings.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(httpErrorWriter{l}, "", 0)
}

type httpErrorWriter struct{ l *slog.Logger }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	if bytes.Contains(p, []byte("TLS handshake error")) {
		w.l.Debug(msg)
	} else {
		w.l.Warn(msg)
	}
	return len(p), nil
}
