package shovel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/mapping"
)

// Component is the runtime-parameter component of shovels.
const Component = "shovel"

// ErrInvalid wraps a definition that does not parse (HTTP 400).
var ErrInvalid = errors.New("invalid shovel definition")

// Manager runs every shovel defined in the store. It owns one goroutine
// per shovel (a runner); Close stops them all.
type Manager struct {
	r    *mapping.Router
	log  *slog.Logger
	node string

	ctx    context.Context
	cancel context.CancelFunc

	// opMu serialises start, Delete and Restart, so that two calls for
	// one shovel cannot both start a runner. Runners never take it (they
	// remove themselves under mu only), so holding it while waiting for a
	// runner to stop cannot deadlock.
	opMu    sync.Mutex
	mu      sync.Mutex // guards runners; never held across a runner's stop
	runners map[[2]string]*runner
	// retired: runners stopped because their shovel was deleted or moved
	// on another node of a cluster; Close waits for them too.
	retired []*runner
}

// New makes a manager for the shovels stored in r; Start runs them.
func New(r *mapping.Router, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{r: r, log: log, node: "warren@" + host, ctx: ctx, cancel: cancel, runners: map[[2]string]*runner{}}
	r.WatchParameters(m.changedElsewhere)
	return m
}

// changedElsewhere: in a cluster, a shovel deleted on another node, or
// declared again there (it then runs there), stops here. It is called by
// the router's metadata watcher, so it does not wait for the runner.
func (m *Manager) changedElsewhere(p mapping.Parameter, deleted bool) {
	if p.Component != Component || !deleted && p.Node == m.r.NodeName() {
		return
	}
	key := [2]string{p.VHost, p.Name}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.runners[key]; r != nil {
		delete(m.runners, key)
		r.cancel()
		m.retired = slices.DeleteFunc(m.retired, func(o *runner) bool {
			select {
			case <-o.done:
				return true
			default:
				return false
			}
		})
		m.retired = append(m.retired, r)
		m.log.Info("shovel stopped: changed on another node", "vhost", p.VHost, "shovel", p.Name, "deleted", deleted, "runs_on", p.Node)
	}
}

// Node is the node name statuses report.
func (m *Manager) Node() string { return m.node }

// Start runs every stored shovel (after a restart they resume).
func (m *Manager) Start() error {
	ps, err := m.r.Parameters(Component, "")
	if err != nil {
		return err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	for _, p := range ps {
		if p.Node != m.r.NodeName() {
			continue // a cluster's shovel runs on the node it was declared on
		}
		m.start(p)
	}
	return nil
}

// start replaces the runner of p's shovel with a new one.
// Callers hold opMu.
func (m *Manager) start(p mapping.Parameter) {
	key := [2]string{p.VHost, p.Name}
	m.mu.Lock()
	old := m.runners[key]
	delete(m.runners, key)
	m.mu.Unlock()
	if old != nil {
		old.stop()
	}
	r := &runner{m: m, vhost: p.VHost, name: p.Name, owner: p.Owner, raw: p.Value, done: make(chan struct{}), remaining: -1}
	def, err := Parse(p.Value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	m.runners[key] = r
	if err != nil {
		// Stored by an older release or edited by hand: shown, not run.
		r.set(StateTerminated, err.Error())
		close(r.done)
		r.cancel = func() {}
		return
	}
	r.def = def
	ctx, cancel := context.WithCancel(m.ctx)
	r.cancel = cancel
	r.set(StateStarting, "")
	go r.loop(ctx)
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// Put creates or replaces a shovel; owner is the user it acts as. created
// says whether it is new.
func (m *Manager) Put(vhost, name, owner string, value []byte) (created bool, err error) {
	if _, err := Parse(value); err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if name == "" {
		return false, fmt.Errorf("%w: the shovel needs a name", ErrInvalid)
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	_, getErr := m.r.Parameter(Component, vhost, name)
	created = getErr != nil
	p := mapping.Parameter{Component: Component, VHost: vhost, Name: name, Value: json.RawMessage(value), Owner: owner, Node: m.r.NodeName()}
	if err := m.r.PutParameter(p); err != nil {
		return false, err
	}
	m.start(p)
	return created, nil
}

// Delete stops and removes a shovel; its unacked messages go back to the
// source queue.
func (m *Manager) Delete(vhost, name string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.r.DeleteParameter(Component, vhost, name); err != nil {
		return err
	}
	m.forget(vhost, name, nil)
	return nil
}

// forget stops and drops the runner of a shovel (only r when not nil).
func (m *Manager) forget(vhost, name string, only *runner) {
	key := [2]string{vhost, name}
	m.mu.Lock()
	r := m.runners[key]
	if r != nil && (only == nil || r == only) {
		delete(m.runners, key)
	} else {
		r = nil
	}
	m.mu.Unlock()
	if r != nil && r != only {
		r.stop()
	}
}

// completed: src-delete-after was reached; RabbitMQ then deletes the
// shovel. Called on the runner's own goroutine.
func (m *Manager) completed(ctx context.Context, r *runner) {
	// opMu keeps a Put of a new definition from landing between the check
	// and the delete. A start or Delete holding it may be waiting for this
	// runner to stop: that cancels ctx, and the shovel is theirs.
	for !m.opMu.TryLock() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	defer m.opMu.Unlock()
	if cur, err := m.r.Parameter(Component, r.vhost, r.name); err == nil && string(cur.Value) == string(r.raw) {
		if err := m.r.DeleteParameter(Component, r.vhost, r.name); err != nil {
			m.log.Error("delete completed shovel", "vhost", r.vhost, "shovel", r.name, "err", err)
		}
	}
	m.log.Info("shovel completed and removed", "vhost", r.vhost, "shovel", r.name)
	m.forget(r.vhost, r.name, r)
}

// stillDefined: is r's parameter still stored (a vhost deletion removes
// them without telling the manager)? If not, r is dropped.
func (m *Manager) stillDefined(r *runner) bool {
	_, err := m.r.Parameter(Component, r.vhost, r.name)
	if err != nil && mapping.KindOf(err) == mapping.KindNotFound {
		m.forget(r.vhost, r.name, r)
		return false
	}
	return true
}

// Close stops every shovel and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.cancel()
	rs := make([]*runner, 0, len(m.runners))
	for _, r := range m.runners {
		rs = append(rs, r)
	}
	rs = append(rs, m.retired...)
	m.mu.Unlock()
	for _, r := range rs {
		<-r.done
	}
}

// Status is a shovel's state as GET /api/shovels reports it.
type Status struct {
	VHost  string
	Name   string
	State  string
	Reason string
	Since  time.Time
	Def    *Def // nil when the definition does not parse
}

// Statuses lists the shovels of vhost ("" for all), sorted.
func (m *Manager) Statuses(vhost string) []Status {
	m.mu.Lock()
	out := make([]Status, 0, len(m.runners))
	for _, r := range m.runners {
		if vhost != "" && r.vhost != vhost {
			continue
		}
		r.mu.Lock()
		out = append(out, Status{VHost: r.vhost, Name: r.name, State: r.state, Reason: r.reason, Since: r.since, Def: r.def})
		r.mu.Unlock()
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].VHost != out[j].VHost {
			return out[i].VHost < out[j].VHost
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Parameters lists the stored shovel definitions of vhost ("" for all).
func (m *Manager) Parameters(vhost string) ([]mapping.Parameter, error) {
	return m.r.Parameters(Component, vhost)
}

// Parameter returns one stored shovel definition.
func (m *Manager) Parameter(vhost, name string) (mapping.Parameter, error) {
	return m.r.Parameter(Component, vhost, name)
}

// RedactValue is a shovel value as the API shows it: passwords in URIs
// and the webhook secret replaced by "***".
func RedactValue(raw []byte) json.RawMessage {
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	for _, k := range []string{"src-uri", "dest-uri"} {
		switch x := v[k].(type) {
		case string:
			v[k] = Redact(x)
		case []any:
			for i, e := range x {
				if s, ok := e.(string); ok {
					x[i] = Redact(s)
				}
			}
		}
	}
	if _, ok := v["dest-http-signature-secret"]; ok {
		v["dest-http-signature-secret"] = "***"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// Restart stops a shovel and starts it again from its stored definition.
func (m *Manager) Restart(vhost, name string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	p, err := m.r.Parameter(Component, vhost, name)
	if err != nil {
		return err
	}
	m.start(p)
	return nil
}
