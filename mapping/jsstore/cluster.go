package jsstore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// ClusterConfig makes the embedded nats-server one node of a NATS cluster
// with clustered JetStream. A nil *ClusterConfig (the default) is a single
// node exactly as before: no listener at all, server name "warren".
type ClusterConfig struct {
	Name     string // cluster name, the same on every node; "" → DefaultClusterName
	NodeName string // this node's name: unique in the cluster, stable across restarts
	Listen   string // host:port of this node's route listener
	// Advertise, when set, is the host:port the other nodes are told to
	// reach this node's routes at (gossiped to the nodes that learn about
	// it from a third one) instead of Listen: the address a NAT or a
	// proxy in front of the node exposes.
	Advertise string
	Peers     []string // host:port of the route listeners of the other nodes (may name this one too)
	Secret    string   // shared secret every route must present
	// TLS, when set, is used for routes in both directions: the listener
	// asks for and verifies a client certificate, and a solicited route
	// verifies the peer's certificate against RootCAs.
	TLS *tls.Config
	// FormTimeout bounds how long Open waits for the JetStream meta group
	// to have a leader (a quorum of the nodes running); 0 → 60 s.
	FormTimeout time.Duration
}

// DefaultClusterName is the NATS cluster name when ClusterConfig.Name is "".
const DefaultClusterName = "warren"

// routeUser is the user name routes authenticate with; the secret is
// the password.
const routeUser = "warren-route"

// nodeTagPrefix + node name is the server tag that places a node's
// streams on it.
const nodeTagPrefix = "warren-node:"

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// CheckNodeName reports whether name can be a node name: it becomes the
// nats-server name, a placement tag and part of the metadata bucket name.
func CheckNodeName(name string) error {
	if !nodeNameRE.MatchString(name) {
		return fmt.Errorf("node name %q: want 1 to 64 letters, digits, '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Check validates the configuration and fills in the defaults (Name,
// FormTimeout).
func (c *ClusterConfig) Check() error {
	if err := CheckNodeName(c.NodeName); err != nil {
		return err
	}
	if c.Name == "" {
		c.Name = DefaultClusterName
	}
	if c.Secret == "" {
		return errors.New("a cluster needs a shared secret (routes are authenticated with it)")
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		return fmt.Errorf("cluster address %q: %v", c.Listen, err)
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("cluster advertise address %q: %v", c.Advertise, err)
		}
	}
	if len(c.Peers) == 0 {
		return errors.New("a cluster needs at least one peer address")
	}
	for _, p := range c.Peers {
		if _, _, err := splitHostPort(p); err != nil {
			return fmt.Errorf("cluster peer %q: %v", p, err)
		}
	}
	if c.FormTimeout <= 0 {
		c.FormTimeout = 60 * time.Second
	}
	return nil
}

func splitHostPort(hp string) (string, int, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, errors.New("want host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, errors.New("want a port from 1 to 65535")
	}
	return host, n, nil
}

// clusterOptions turns opts (the single-node options) into a cluster
// node's. It returns the token the in-process connections must present:
// routing cannot start without the client listener (nats-server#5174:
// with DontListen the route listener never opens), so the client port
// listens on loopback, on a random port, behind a random per-process
// token that only this process knows.
func clusterOptions(opts *server.Options, c *ClusterConfig) (token string, err error) {
	if err := c.Check(); err != nil {
		return "", fmt.Errorf("jsstore: cluster: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token = hex.EncodeToString(b[:])
	host, port, _ := splitHostPort(c.Listen)
	opts.ServerName = c.NodeName
	opts.DontListen = false
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.Authorization = token
	opts.HTTPPort = 0
	opts.Tags = jwt.TagList{nodeTagPrefix + strings.ToLower(c.NodeName)}
	opts.Cluster = server.ClusterOpts{
		Name:     c.Name,
		Host:     host,
		Port:     port,
		Username: routeUser,
		Password: c.Secret,
		// The route address in this node's INFO, which the other nodes
		// dial when they learn about it through a third node.
		Advertise: c.Advertise,
	}
	if c.TLS != nil {
		opts.Cluster.TLSConfig = c.TLS
		opts.Cluster.TLSTimeout = 5
	}
	for _, p := range c.Peers {
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", User: url.UserPassword(routeUser, c.Secret), Host: p})
	}
	return token, nil
}

// logPrefix is what a node puts in front of the names of the logs it
// creates, so that two nodes' queues of the same name do not share one
// stream (stream names are cluster-wide): "" on a single node, else 8 hex
// digits of a hash of the node name and '-'. Every log of a cluster node
// starts so, so one node's prefix never matches another node's log.
func logPrefix(c *ClusterConfig) string {
	if c == nil {
		return ""
	}
	h := sha256.Sum256([]byte(c.NodeName))
	return hex.EncodeToString(h[:4]) + "-"
}

// LogPrefix is the prefix of this node's log names (see logPrefix); the
// caller puts it in front of the names it passes to CreateLog.
func (s *Store) LogPrefix() string { return s.logPrefix }

// waitForMeta waits until the JetStream meta group has a leader and this
// node is current with it: before that the JetStream API does not answer
// (a node alone in a three-node cluster has no quorum). It logs every
// 5 s while it waits, and fails after the form timeout with what it knows
// about the routes.
func waitForMeta(ns *server.Server, c *ClusterConfig, lg *slog.Logger, refused *routeRefusals) error {
	deadline := time.Now().Add(c.FormTimeout)
	nextLog := time.Now().Add(5 * time.Second)
	for {
		if jsz, err := ns.Jsz(nil); err == nil && jsz.Meta != nil && jsz.Meta.Leader != "" && ns.JetStreamIsCurrent() {
			lg.Info("joined the cluster", "cluster", c.Name, "node", c.NodeName, "meta_leader", jsz.Meta.Leader, "cluster_size", jsz.Meta.Size)
			return nil
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("jsstore: cluster %q: no JetStream meta leader within %s (%s); a cluster of N nodes needs N/2+1 of them running and connected; check --cluster-peers and --cluster-secret",
				c.Name, c.FormTimeout, routeSummary(ns, c, refused))
		}
		if now.After(nextLog) {
			lg.Warn("waiting for the cluster to elect a JetStream meta leader", "cluster", c.Name, "node", c.NodeName, "state", routeSummary(ns, c, refused))
			nextLog = now.Add(5 * time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// routeSummary says which nodes this one has routes to and which routes
// were refused, for the messages of waitForMeta.
func routeSummary(ns *server.Server, c *ClusterConfig, refused *routeRefusals) string {
	names := connectedRoutes(ns)
	out := fmt.Sprintf("routes connected to %d node(s) %v of %d configured peer address(es)", len(names), names, len(c.Peers))
	if n, last := refused.get(); n > 0 {
		out += fmt.Sprintf("; %d route(s) refused, last: %s", n, last)
	}
	return out
}

// connectedRoutes lists the names of the nodes this node has a route to.
func connectedRoutes(ns *server.Server) []string {
	rz, err := ns.Routez(nil)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rz.Routes {
		if r.RemoteName != "" && !seen[r.RemoteName] {
			seen[r.RemoteName] = true
			out = append(out, r.RemoteName)
		}
	}
	return out
}

// routeRefusals counts route connections refused for authentication or
// TLS, in either direction, as nats-server logs them (it has no other
// hook for it).
type routeRefusals struct {
	mu   sync.Mutex
	n    int
	last string
	at   time.Time
}

func (r *routeRefusals) get() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.last
}

// observe looks at one nats-server error or warning line. Route
// connections log with a " - rid:" prefix; a refused one says
// "authentication error" (the listening side) or "Authorization
// Violation" (the side whose route was refused), or fails its TLS
// handshake.
func (r *routeRefusals) observe(line string) {
	if !strings.Contains(line, " - rid:") {
		return
	}
	l := strings.ToLower(line)
	tlsFailed := strings.Contains(l, "tls route handshake error") || strings.Contains(l, "tls handshake error")
	if !strings.Contains(l, "authentication error") && !strings.Contains(l, "authorization violation") && !tlsFailed {
		return
	}
	r.mu.Lock()
	r.n++
	r.last = line
	r.at = time.Now()
	r.mu.Unlock()
}

// clusterLogger is the nats-server logger of a cluster node: slog, and
// the route refusals counted on the way.
type clusterLogger struct {
	slogAdapter
	refused *routeRefusals
}

func (a clusterLogger) Warnf(f string, v ...any) {
	s := fmt.Sprintf(f, v...)
	a.refused.observe(s)
	a.l.Warn(s)
}

// Errorf: a peer that cannot be dialled yet (not started, or down) is
// logged as a warning; nats-server keeps trying, and it is normal while
// a cluster starts.
func (a clusterLogger) Errorf(f string, v ...any) {
	s := fmt.Sprintf(f, v...)
	a.refused.observe(s)
	if strings.HasPrefix(s, "Error trying to connect to route") {
		a.l.Warn(s)
		return
	}
	a.l.Error(s)
}
