package main

// TLS for the AMQPS and HTTPS listeners, with certificates that reload
// without a restart: every new handshake asks the certReloader for the
// current tls.Config, and a reload swaps that config. Connections already
// established keep the session they negotiated, so a renewal never drops
// anyone. A reload that fails (a half-written file, a key that does not
// match) is logged and the previous certificate stays in use.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const defaultTLSWatchInterval = 10 * time.Second

// tlsFiles is where a listener's certificate, key and CA come from and
// how it treats client certificates.
type tlsFiles struct {
	name                     string // "AMQPS" or "HTTPS", for logs
	cert, key, ca            string
	verifyPeer, failIfNoPeer bool
	minVersion, maxVersion   uint16 // 0 = TLS 1.2 / 1.3
	// nextProtos is offered in ALPN: http/1.1 on HTTPS (WebSocket
	// upgrades need HTTP/1.1); nothing on AMQPS, where a server list
	// would refuse clients that offer other protocols.
	nextProtos []string
}

type certReloader struct {
	files tlsFiles
	log   *slog.Logger
	cur   atomic.Pointer[tls.Config]

	mu    sync.Mutex // serialises reloads (SIGHUP and the watcher)
	stamp string     // sizes and mtimes of the files last loaded
}

func newCertReloader(f tlsFiles, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{files: f, log: log}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("%s TLS: %w", f.name, err)
	}
	return r, nil
}

// serverConfig is the tls.Config a listener is built with; it defers to
// the current config on every handshake.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load(), nil
		},
	}
}

func (r *certReloader) paths() []string {
	out := []string{r.files.cert, r.files.key}
	if r.files.ca != "" {
		out = append(out, r.files.ca)
	}
	return out
}

// fileStamp identifies the files' current contents well enough to see a
// renewal: size and modification time of each.
func (r *certReloader) fileStamp() string {
	var b strings.Builder
	for _, p := range r.paths() {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// load reads the files and, when they make a valid config, makes it the
// one new handshakes get.
func (r *certReloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp := r.fileStamp()
	cfg, err := buildTLSConfig(r.files)
	if err != nil {
		return err
	}
	r.cur.Store(cfg)
	r.stamp = stamp
	return nil
}

// reload is load for SIGHUP and the watcher: a failure keeps the old
// certificate and is logged.
func (r *certReloader) reload(reason string) {
	if err := r.load(); err != nil {
		r.log.Error("TLS certificate reload failed; keeping the previous certificate", "listener", r.files.name, "reason", reason, "err", err)
		return
	}
	r.log.Info("TLS certificate reloaded", "listener", r.files.name, "reason", reason, "cert", r.files.cert)
}

// changed reports whether the files differ from the last loaded ones.
func (r *certReloader) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fileStamp() != r.stamp
}

func buildTLSConfig(f tlsFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("certificate %s / key %s: %w", f.cert, f.key, err)
	}
	cfg := &tls.Config{
		MinVersion:   max(f.minVersion, tls.VersionTLS12),
		MaxVersion:   f.maxVersion,
		Certificates: []tls.Certificate{cert},
		NextProtos:   f.nextProtos,
		ClientAuth:   tls.NoClientCert,
	}
	if f.ca != "" {
		pool, err := loadCAPool(f.ca)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
	}
	switch {
	case f.verifyPeer && f.failIfNoPeer:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case f.verifyPeer:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if f.verifyPeer && cfg.ClientCAs == nil {
		return nil, errors.New("verify_peer needs a CA file")
	}
	return cfg, nil
}

// tlsWatcher polls the certificate files of its reloaders and reloads the
// ones that changed. It is owned by the instance, which stops it.
type tlsWatcher struct {
	stop chan struct{}
	done chan struct{}
}

func startTLSWatcher(interval time.Duration, reloaders []*certReloader) *tlsWatcher {
	w := &tlsWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	if interval < 0 || len(reloaders) == 0 {
		close(w.done)
		return w
	}
	if interval == 0 {
		interval = defaultTLSWatchInterval
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				for _, r := range reloaders {
					if r.changed() {
						r.reload("file changed")
					}
				}
			}
		}
	}()
	return w
}

func (w *tlsWatcher) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// loadCAPool reads a PEM file of CA certificates.
func loadCAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
