package mapping

import (
	"crypto/sha256"
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// UserInfo is a user as the management API shows it (never the password).
type UserInfo struct {
	Name             string   `json:"name"`
	Tags             []string `json:"tags"`
	PasswordHash     string   `json:"password_hash"`
	HashingAlgorithm string   `json:"hashing_algorithm"`
}

// HasTag reports whether the user carries tag.
func (u *UserInfo) HasTag(tag string) bool { return slices.Contains(u.Tags, tag) }

// Permission is one user's configure/write/read regular expressions on a
// vhost, applied unanchored as RabbitMQ applies them ("" matches nothing).
type Permission struct {
	User      string `json:"user"`
	VHost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

type compiledPerm struct {
	Permission
	conf, write, read *regexp.Regexp
}

// identity holds users and permissions; guarded by its own lock, taken
// after none of the others (it calls nothing while held).
type identity struct {
	mu    sync.RWMutex
	users map[string]*UserInfo
	perms map[string]map[string]*compiledPerm // vhost -> user -> perm
	// gen is bumped, under mu, on every change of users (passwords,
	// tags) and permissions: caches of authentication and access
	// answers (per channel, per HTTP credentials) compare it.
	gen atomic.Uint64

	cacheMu sync.Mutex
	cache   map[string]authCacheEntry // user -> recently verified password digest
}

type authCacheEntry struct {
	digest  [32]byte
	hash    string
	expires time.Time
}

// authCacheTTL keeps a verified password for a short while so that HTTP
// basic auth on every request does not pay for PBKDF2 each time.
const authCacheTTL = time.Minute

func userKey(name string) string        { return "u." + escapeToken(name) }
func vhostKey(name string) string       { return "v." + escapeToken(name) }
func permKey(vhost, user string) string { return "p." + escapeToken(vhost) + "." + escapeToken(user) }
func validTag(t string) bool            { return t != "" && !strings.ContainsAny(t, ", \t") }
func compileRe(s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	return regexp.Compile(s)
}

func compilePerm(p Permission) (*compiledPerm, error) {
	c := &compiledPerm{Permission: p}
	var err error
	if c.conf, err = compileRe(p.Configure); err != nil {
		return nil, errorf(KindPreconditionFailed, "invalid configure regexp '%s': %v", p.Configure, err)
	}
	if c.write, err = compileRe(p.Write); err != nil {
		return nil, errorf(KindPreconditionFailed, "invalid write regexp '%s': %v", p.Write, err)
	}
	if c.read, err = compileRe(p.Read); err != nil {
		return nil, errorf(KindPreconditionFailed, "invalid read regexp '%s': %v", p.Read, err)
	}
	return c, nil
}

// Access kinds of RabbitMQ's permission model.
type Access uint8

const (
	Configure Access = iota
	Write
	Read
)

func (a Access) String() string { return [...]string{"configure", "write", "read"}[a] }

// Resource kinds named in access errors.
const (
	ResourceQueue    = "queue"
	ResourceExchange = "exchange"
)

// loadIdentity reads users, vhosts and permissions from the store and, on
// a first start, creates the default user and vhost.
func (r *Router) loadIdentity() error {
	id := &r.id
	id.users = map[string]*UserInfo{}
	id.perms = map[string]map[string]*compiledPerm{}
	id.cache = map[string]authCacheEntry{}
	us, err := r.listRecords("u.")
	if err != nil {
		return err
	}
	vs, err := r.listRecords("v.")
	if err != nil {
		return err
	}
	ps, err := r.listRecords("p.")
	if err != nil {
		return err
	}
	for _, it := range us {
		var u UserInfo
		if err := json.Unmarshal(it.e.Value, &u); err != nil {
			r.log.Error("skipping unreadable user record", "key", it.e.Key, "err", err)
			continue
		}
		id.users[u.Name] = &u
		r.noteLoaded(it)
	}
	for _, it := range vs {
		var rec vhostRecord
		if err := json.Unmarshal(it.e.Value, &rec); err != nil {
			r.log.Error("skipping unreadable vhost record", "key", it.e.Key, "err", err)
			continue
		}
		r.setVHost(rec)
		r.noteLoaded(it)
	}
	for _, it := range ps {
		var p Permission
		if err := json.Unmarshal(it.e.Value, &p); err != nil {
			r.log.Error("skipping unreadable permission record", "key", it.e.Key, "err", err)
			continue
		}
		if err := r.setPerm(p); err != nil {
			r.log.Error("skipping permission with a bad regexp", "user", p.User, "vhost", p.VHost, "err", err)
			continue
		}
		r.noteLoaded(it)
	}
	first := len(us) == 0 && len(vs) == 0
	if r.meta != nil {
		// A listing may read a replica that lags (a node that joins
		// with an empty data directory reads its own, still empty), and
		// the defaults written then would overwrite the administrator's
		// changes to them. The bucket's last revision, which its
		// stream's leader answers, says whether the cluster was ever set
		// up; the replay brings this node what it was set up with.
		first = r.meta.startRevs[jsstore.Durable] == 0
	}
	if first {
		// First start: RabbitMQ's defaults, or the configured ones.
		user, pass := r.cfg.DefaultUser, r.cfg.DefaultPass
		if user == "" {
			user, pass = "guest", "guest"
		}
		vhost := r.cfg.DefaultVHost
		if vhost == "" {
			vhost = defaultVHost
		}
		if err := r.PutVHost(vhost, "Default virtual host", nil, ""); err != nil {
			return err
		}
		if err := r.PutUser(user, pass, "", []string{"administrator"}); err != nil {
			return err
		}
		if err := r.SetPermissions(Permission{User: user, VHost: vhost, Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
			return err
		}
		r.log.Info("first start: created vhost and administrator", "vhost", vhost, "user", user)
	}
	return nil
}

// Authenticate checks a user's password for any front and returns the
// user. Users in Config.LoopbackUsers (default: guest) may only connect
// from a loopback address, as RabbitMQ's loopback_users.
func (r *Router) Authenticate(user, pass string, remote net.Addr) (*UserInfo, error) {
	cp, ok := r.userCopy(user)
	valid := ok && cp.PasswordHash != "" && r.passwordOK(&cp, pass)
	if !valid && r.barrier() {
		// Created, or its password changed, on another node a moment ago.
		cp, ok = r.userCopy(user)
		valid = ok && cp.PasswordHash != "" && r.passwordOK(&cp, pass)
	}
	if !valid {
		return nil, errorf(KindAccessRefused, "invalid credentials for user '%s'", user)
	}
	if err := r.checkLoopbackUser(user, remote); err != nil {
		return nil, err
	}
	return &cp, nil
}

// IdentityGeneration is a counter that changes whenever users, their
// passwords or tags, or permissions change (in a cluster also when this
// node applies a change made on another node). A front
// that caches the outcome of Authenticate keeps it only while the
// generation is the one read before authenticating.
func (r *Router) IdentityGeneration() uint64 { return r.id.gen.Load() }

func (r *Router) loopbackUsers() []string {
	if r.cfg.LoopbackUsers != nil {
		return r.cfg.LoopbackUsers
	}
	return []string{"guest"}
}

func (r *Router) passwordOK(u *UserInfo, pass string) bool {
	id := &r.id
	digest := sha256.Sum256([]byte(u.Name + "\x00" + pass + "\x00" + u.PasswordHash))
	now := time.Now()
	id.cacheMu.Lock()
	e, ok := id.cache[u.Name]
	id.cacheMu.Unlock()
	if ok && e.digest == digest && e.hash == u.PasswordHash && now.Before(e.expires) {
		return true
	}
	if !checkPassword(u.HashingAlgorithm, u.PasswordHash, pass) {
		return false
	}
	id.cacheMu.Lock()
	id.cache[u.Name] = authCacheEntry{digest: digest, hash: u.PasswordHash, expires: now.Add(authCacheTTL)}
	id.cacheMu.Unlock()
	return true
}

// CheckVHostAccess answers connection.open: the user needs some
// permission on the vhost (530 NOT_ALLOWED otherwise).
func (r *Router) CheckVHostAccess(user, vhost string) error {
	if _, err := r.VHost(vhost); err != nil {
		return err
	}
	granted := func() bool {
		r.id.mu.RLock()
		defer r.id.mu.RUnlock()
		_, ok := r.id.perms[vhost][user]
		return ok
	}
	if !granted() && (!r.barrier() || !granted()) {
		return errorf(KindNotAllowed, "access to vhost '%s' refused for user '%s'", vhost, user)
	}
	return nil
}

// check applies the user's permission regexps to a resource name.
func (r *Router) check(user, vhost string, a Access, kind, name string) error {
	if kind == ResourceExchange && name == "" {
		name = "amq.default"
	}
	r.id.mu.RLock()
	p := r.id.perms[vhost][user]
	r.id.mu.RUnlock()
	var re *regexp.Regexp
	if p != nil {
		re = [...]*regexp.Regexp{p.conf, p.write, p.read}[a]
	}
	if re == nil || !re.MatchString(name) {
		return errorf(KindAccessRefused, "%s access to %s '%s' in vhost '%s' refused for user '%s'", a, kind, name, vhost, user)
	}
	return nil
}

// PutUser creates or updates a user. An empty password with an empty
// hash leaves the user unable to log in with a password, as RabbitMQ.
// A non-empty hash (from imported definitions) is stored as it is.
func (r *Router) PutUser(name, password, hash string, tags []string) error {
	return r.putUser(name, password, hash, "", tags)
}

// PutUserHash creates or updates a user from a stored hash of algorithm
// algo (RabbitMQ's definitions format).
func (r *Router) PutUserHash(name, hash, algo string, tags []string) error {
	return r.putUser(name, "", hash, algo, tags)
}

func (r *Router) putUser(name, password, hash, algo string, tags []string) error {
	if name == "" || len(name) > 255 {
		return errorf(KindPreconditionFailed, "user name must be 1 to 255 bytes")
	}
	for _, t := range tags {
		if !validTag(t) {
			return errorf(KindPreconditionFailed, "invalid user tag '%s'", t)
		}
	}
	u := &UserInfo{Name: name, Tags: append([]string{}, tags...)}
	switch {
	case password != "":
		h, err := hashPassword(password)
		if err != nil {
			return errorf(KindInternal, "hash password: %v", err)
		}
		u.PasswordHash, u.HashingAlgorithm = h, algoPBKDF2
	case hash != "":
		if algo == "" {
			algo = algoRabbitSHA256
		}
		switch algo {
		case algoPBKDF2, algoRabbitSHA256, algoRabbitSHA512:
		default:
			return errorf(KindPreconditionFailed, "unsupported hashing algorithm '%s'", algo)
		}
		u.PasswordHash, u.HashingAlgorithm = hash, algo
	}
	keep := password == "" && hash == "" // keep the current password
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	for range 3 {
		r.id.mu.RLock()
		old := r.id.users[name]
		r.id.mu.RUnlock()
		if keep && old != nil {
			u.PasswordHash, u.HashingAlgorithm = old.PasswordHash, old.HashingAlgorithm
		}
		newer, err := r.casRecord(jsstore.Durable, userKey(name), u, old != nil)
		if err != nil {
			return err
		}
		if newer == nil {
			r.setUser(u)
			return nil
		}
		// Changed on another node and not applied here yet: apply that
		// version and change it instead (no lost update).
		time.Sleep(25 * time.Millisecond) // a read may have reached a lagging replica
		if newer.Deleted {
			r.forgetUser(name)
			continue
		}
		var cur UserInfo
		if err := json.Unmarshal(newer.Value, &cur); err != nil {
			return errorf(KindInternal, "user '%s': unreadable record: %v", name, err)
		}
		r.setUser(&cur)
	}
	return errorf(KindInternal, "user '%s' is being changed concurrently on other nodes; retry", name)
}

// setUser puts u in the model (a change of this node or of another).
func (r *Router) setUser(u *UserInfo) {
	r.id.mu.Lock()
	r.id.users[u.Name] = u
	r.id.gen.Add(1)
	r.id.mu.Unlock()
}

// forgetUser drops a user and their permissions from the model.
func (r *Router) forgetUser(name string) (vhosts []string) {
	r.id.mu.Lock()
	delete(r.id.users, name)
	r.id.gen.Add(1)
	for vh, m := range r.id.perms {
		if _, ok := m[name]; ok {
			delete(m, name)
			vhosts = append(vhosts, vh)
		}
	}
	r.id.mu.Unlock()
	r.id.cacheMu.Lock()
	delete(r.id.cache, name)
	r.id.cacheMu.Unlock()
	return vhosts
}

// setPerm puts a permission in the model.
func (r *Router) setPerm(p Permission) error {
	cp, err := compilePerm(p)
	if err != nil {
		return err
	}
	r.id.mu.Lock()
	if r.id.perms[p.VHost] == nil {
		r.id.perms[p.VHost] = map[string]*compiledPerm{}
	}
	r.id.perms[p.VHost][p.User] = cp
	r.id.gen.Add(1)
	r.id.mu.Unlock()
	return nil
}

// SetUserTags replaces a user's tags.
func (r *Router) SetUserTags(name string, tags []string) error {
	if _, err := r.User(name); err != nil {
		return err
	}
	return r.putUser(name, "", "", "", tags) // keeps the password it has when written
}

// ChangePassword sets a new password.
func (r *Router) ChangePassword(name, password string) error {
	u, err := r.User(name)
	if err != nil {
		return err
	}
	if password == "" {
		return errorf(KindPreconditionFailed, "the new password must not be empty")
	}
	return r.putUser(name, password, "", "", u.Tags)
}

// DeleteUser removes a user and all their permissions.
func (r *Router) DeleteUser(name string) error {
	if _, err := r.User(name); err != nil {
		return err
	}
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	if err := r.store.MetaDelete(userKey(name)); err != nil {
		return errorf(KindInternal, "delete user: %v", err)
	}
	for _, vh := range r.forgetUser(name) {
		r.store.MetaDelete(permKey(vh, name))
	}
	return nil
}

// User returns one user.
func (r *Router) User(name string) (UserInfo, error) {
	r.id.mu.RLock()
	defer r.id.mu.RUnlock()
	u := r.id.users[name]
	if u == nil {
		return UserInfo{}, errorf(KindNotFound, "no user '%s'", name)
	}
	return *u, nil
}

// Users returns every user, sorted by name.
func (r *Router) Users() []UserInfo {
	r.id.mu.RLock()
	out := make([]UserInfo, 0, len(r.id.users))
	for _, u := range r.id.users {
		out = append(out, *u)
	}
	r.id.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetPermissions grants a user configure/write/read regexps on a vhost.
func (r *Router) SetPermissions(p Permission) error {
	if _, err := r.User(p.User); err != nil {
		return err
	}
	if _, err := r.VHost(p.VHost); err != nil {
		return errorf(KindNotFound, "no vhost '%s'", p.VHost)
	}
	if _, err := compilePerm(p); err != nil {
		return err
	}
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	if err := r.putJSON(permKey(p.VHost, p.User), p); err != nil {
		return err
	}
	return r.setPerm(p)
}

// ClearPermissions removes a user's permissions on a vhost.
func (r *Router) ClearPermissions(user, vhost string) error {
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	r.id.mu.Lock()
	_, ok := r.id.perms[vhost][user]
	delete(r.id.perms[vhost], user)
	r.id.gen.Add(1)
	r.id.mu.Unlock()
	if !ok {
		return errorf(KindNotFound, "no permissions for user '%s' in vhost '%s'", user, vhost)
	}
	if err := r.store.MetaDelete(permKey(vhost, user)); err != nil {
		return errorf(KindInternal, "delete permission: %v", err)
	}
	return nil
}

// Permissions lists permissions, optionally only of one vhost or user
// ("" = all), sorted by vhost then user.
func (r *Router) Permissions(vhost, user string) []Permission {
	r.id.mu.RLock()
	var out []Permission
	for vh, m := range r.id.perms {
		if vhost != "" && vh != vhost {
			continue
		}
		for u, p := range m {
			if user != "" && u != user {
				continue
			}
			out = append(out, p.Permission)
		}
	}
	r.id.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].VHost != out[j].VHost {
			return out[i].VHost < out[j].VHost
		}
		return out[i].User < out[j].User
	})
	return out
}

// vhostRecord is a vhost in the metadata bucket.
type vhostRecord struct {
	Name             string   `json:"name"`
	Description      string   `json:"description,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	DefaultQueueType string   `json:"default_queue_type,omitempty"`
}

// AddVHost creates a vhost with its predeclared exchanges (idempotent;
// an existing vhost keeps its description, tags and default queue type).
func (r *Router) AddVHost(name string) error {
	if vh, err := r.VHost(name); err == nil {
		d, t := vh.Meta()
		return r.PutVHost(name, d, t, "")
	}
	return r.PutVHost(name, "", nil, "")
}

// PutVHost creates a vhost or replaces its description and tags.
// defaultQueueType is its default queue type (qtype.go): classic or
// quorum, as RabbitMQ 3.10 keeps one per vhost; "" leaves an existing
// vhost's as it is (a new one follows the node's default).
func (r *Router) PutVHost(name, description string, tags []string, defaultQueueType string) error {
	if name == "" || len(name) > 255 {
		return errorf(KindPreconditionFailed, "vhost name must be 1 to 255 bytes")
	}
	if defaultQueueType != "" {
		if _, err := ParseDefaultQueueType(defaultQueueType); err != nil {
			return errorf(KindPreconditionFailed, "vhost '%s': %v", name, err)
		}
	} else if vh, err := r.VHost(name); err == nil {
		defaultQueueType = vh.OwnDefaultQueueType()
	}
	rec := vhostRecord{Name: name, Description: description, Tags: tags, DefaultQueueType: defaultQueueType}
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	if err := r.putJSON(vhostKey(name), rec); err != nil {
		return err
	}
	r.setVHost(rec)
	return nil
}

// setVHost puts a vhost in the model, or updates its description, tags
// and default queue type.
func (r *Router) setVHost(rec vhostRecord) {
	r.mu.Lock()
	vh := r.vhosts[rec.Name]
	if vh == nil {
		vh = newVHost(r, rec.Name)
		r.vhosts[rec.Name] = vh
	}
	r.mu.Unlock()
	vh.setMeta(rec.Description, rec.Tags, rec.DefaultQueueType)
}

// VHostNames lists the vhosts, sorted.
func (r *Router) VHostNames() []string {
	r.mu.RLock()
	out := make([]string, 0, len(r.vhosts))
	for n := range r.vhosts {
		out = append(out, n)
	}
	r.mu.RUnlock()
	sort.Strings(out)
	return out
}

// DeleteVHost deletes a vhost with its exchanges, queues, messages and
// permissions, closing the connections that use it.
func (r *Router) DeleteVHost(name string) error {
	r.idWriteMu.Lock()
	defer r.idWriteMu.Unlock()
	r.mu.Lock()
	vh := r.vhosts[name]
	delete(r.vhosts, name)
	r.mu.Unlock()
	if vh == nil {
		return errorf(KindNotFound, "no vhost '%s'", name)
	}
	for _, c := range r.connections() {
		if c.vh == vh {
			c.forceClose("vhost deleted")
		}
	}
	vh.mu.RLock()
	qs := make([]*Queue, 0, len(vh.queues))
	for _, q := range vh.queues {
		qs = append(qs, q)
	}
	var xs []*exchange
	for _, e := range vh.exchanges {
		if e.spec.Durable {
			xs = append(xs, e)
		}
	}
	vh.mu.RUnlock()
	for _, q := range qs {
		vh.deleteQueue(q)
	}
	vh.topoMu.Lock()
	var w metaWrites
	vh.mu.Lock()
	for _, e := range xs {
		if vh.exchanges[e.spec.Name] == e {
			vh.deleteExchangeLocked(e, &w)
		}
	}
	vh.mu.Unlock()
	w.run()
	vh.topoMu.Unlock()
	r.id.mu.Lock()
	users := r.id.perms[name]
	delete(r.id.perms, name)
	r.id.gen.Add(1)
	r.id.mu.Unlock()
	for u := range users {
		r.store.MetaDelete(permKey(name, u))
	}
	r.deleteVHostParameters(name)
	if err := r.store.MetaDelete(vhostKey(name)); err != nil {
		return errorf(KindInternal, "delete vhost: %v", err)
	}
	return nil
}

// allowed checks the channel's user for access a on a resource.
func (ch *Channel) allowed(a Access, kind, name string) error {
	return ch.vh.r.check(ch.conn.user, ch.vh.name, a, kind, name)
}

// allowBinding: binding needs write on the destination and read on the
// source exchange.
func (ch *Channel) allowBinding(dstKind, dst, source string) error {
	if err := ch.allowed(Write, dstKind, dst); err != nil {
		return err
	}
	return ch.allowed(Read, ResourceExchange, source)
}

// allowPublish checks write access on the exchange, remembering the last
// answer per channel until permissions change (publish is the hot path).
func (ch *Channel) allowPublish(exchange string) error {
	gen := ch.vh.r.id.gen.Load()
	if ch.pubOKGen.Load() == gen && ch.pubOKName.Load() != nil && *ch.pubOKName.Load() == exchange {
		return nil
	}
	if err := ch.allowed(Write, ResourceExchange, exchange); err != nil {
		return err
	}
	ch.pubOKName.Store(&exchange)
	ch.pubOKGen.Store(gen)
	return nil
}

// isLoopback reports whether a client address is on this machine.
func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case nil:
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		// net.Pipe and other in-process transports are local.
		return a.Network() == "pipe"
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
