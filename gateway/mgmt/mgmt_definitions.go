package mgmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
)

// Definitions in RabbitMQ's JSON format: users, vhosts, permissions and
// the durable topology (exchanges other than the predeclared ones, queues
// that are not exclusive, bindings other than the default exchange's).
// Messages are not part of it.

type mgDefUser struct {
	Name             string         `json:"name"`
	PasswordHash     string         `json:"password_hash"`
	HashingAlgorithm string         `json:"hashing_algorithm"`
	Tags             any            `json:"tags"`
	Limits           map[string]any `json:"limits,omitempty"`
	Password         string         `json:"password,omitempty"` // accepted on import only
}

type mgDefVHost struct {
	Name     string         `json:"name"`
	Limits   []any          `json:"limits,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

type mgDefQueue struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Durable    mgFlexBool     `json:"durable"`
	AutoDelete mgFlexBool     `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

type mgDefExchange struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    mgFlexBool     `json:"durable"`
	AutoDelete mgFlexBool     `json:"auto_delete"`
	Internal   mgFlexBool     `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

type mgDefBinding struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

type mgDefinitions struct {
	RabbitVersion    string               `json:"rabbit_version,omitempty"`
	RabbitMQVersion  string               `json:"rabbitmq_version,omitempty"`
	ProductName      string               `json:"product_name,omitempty"`
	ProductVersion   string               `json:"product_version,omitempty"`
	Users            []mgDefUser          `json:"users,omitempty"`
	VHosts           []mgDefVHost         `json:"vhosts,omitempty"`
	Permissions      []mapping.Permission `json:"permissions,omitempty"`
	TopicPermissions []any                `json:"topic_permissions,omitempty"`
	Parameters       []any                `json:"parameters"`
	GlobalParameters []any                `json:"global_parameters,omitempty"`
	Policies         []any                `json:"policies"`
	Queues           []mgDefQueue         `json:"queues"`
	Exchanges        []mgDefExchange      `json:"exchanges"`
	Bindings         []mgDefBinding       `json:"bindings"`
}

// marshalling mgFlexBool for export
func (b mgFlexBool) MarshalJSON() ([]byte, error) { return json.Marshal(b.Value) }

func mgBool(v bool) mgFlexBool { return mgFlexBool{Set: true, Value: v} }

func (m *mgmt) exportDefinitions(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	var vhosts []string
	one := mgHasParam(c, "vhost")
	if one {
		name, err := mgParam(c, "vhost")
		if err != nil {
			return err
		}
		if _, err := m.vhost(c, name); err != nil {
			return err
		}
		vhosts = []string{name}
	} else {
		vhosts = m.s.router.VHostNames()
	}
	d := mgDefinitions{
		RabbitVersion: mgmtRabbitVersion, RabbitMQVersion: mgmtRabbitVersion, ProductName: mgmtProduct, ProductVersion: mgmtProductVersion,
		Parameters: []any{}, Policies: []any{}, Queues: []mgDefQueue{}, Exchanges: []mgDefExchange{}, Bindings: []mgDefBinding{},
	}
	if !one {
		d.Users, d.VHosts, d.Permissions = []mgDefUser{}, []mgDefVHost{}, []mapping.Permission{}
		d.TopicPermissions, d.GlobalParameters = []any{}, []any{}
		for _, u := range m.s.router.Users() {
			d.Users = append(d.Users, mgDefUser{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashingAlgorithm, Tags: mgTags(u.Tags), Limits: map[string]any{}})
		}
		for _, v := range vhosts {
			md := map[string]any{"description": "", "tags": []string{}}
			if vh, err := m.s.router.VHost(v); err == nil {
				md = mgVHostMeta(vh)
			}
			d.VHosts = append(d.VHosts, mgDefVHost{Name: v, Limits: []any{}, Metadata: md})
		}
		d.Permissions = append(d.Permissions, m.s.router.Permissions("", "")...)
	}
	for _, name := range vhosts {
		vh, err := m.s.router.VHost(name)
		if err != nil {
			continue
		}
		vhOut := name
		if one {
			vhOut = "" // per-vhost exports leave the vhost out, as RabbitMQ
		}
		queues := map[string]bool{}
		for _, q := range vh.QueueDefinitions() {
			if q.Exclusive {
				continue
			}
			queues[q.Name] = true
			d.Queues = append(d.Queues, mgDefQueue{Name: q.Name, VHost: vhOut, Durable: mgBool(q.Durable), AutoDelete: mgBool(q.AutoDelete), Arguments: msgcodec.TableToJSON(q.Arguments)})
		}
		for _, x := range vh.Exchanges() {
			if x.Name == "" || strings.HasPrefix(x.Name, "amq.") {
				continue
			}
			d.Exchanges = append(d.Exchanges, mgDefExchange{Name: x.Name, VHost: vhOut, Type: x.Type, Durable: mgBool(x.Durable), AutoDelete: mgBool(x.AutoDelete), Internal: mgBool(x.Internal), Arguments: msgcodec.TableToJSON(x.Args)})
		}
		for _, b := range vh.Bindings() {
			if b.Source == "" || (b.DestinationType == "queue" && !queues[b.Destination]) {
				continue
			}
			d.Bindings = append(d.Bindings, mgDefBinding{Source: b.Source, VHost: vhOut, Destination: b.Destination, DestinationType: b.DestinationType, RoutingKey: b.RoutingKey, Arguments: msgcodec.TableToJSON(b.Arguments)})
		}
	}
	m.exportShovels(&d, vhosts, one)
	if c.QueryParam("download") != "" {
		c.Response().Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", c.QueryParam("download")))
	}
	return c.JSON(http.StatusOK, d)
}

// mgMaxDefinitions bounds an uploaded mgDefinitions document.
const mgMaxDefinitions = 64 << 20

// importDefinitions merges a mgDefinitions document into the broker:
// vhosts, users and permissions are mgCreated or overwritten; exchanges,
// queues and bindings are declared (an existing one that differs is left
// as it is, as RabbitMQ does). It stops at the first error, leaving what
// was applied so far.
func (m *mgmt) importDefinitions(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	d, err := mgDecodeDefinitions(c)
	if err != nil {
		return err
	}
	one := ""
	if mgHasParam(c, "vhost") {
		if one, err = mgParam(c, "vhost"); err != nil {
			return err
		}
		if _, err := m.vhost(c, one); err != nil {
			return err
		}
		// A vhost import takes only topology, into that vhost.
		d.Users, d.VHosts, d.Permissions = nil, nil, nil
		for i := range d.Queues {
			d.Queues[i].VHost = one
		}
		for i := range d.Exchanges {
			d.Exchanges[i].VHost = one
		}
		for i := range d.Bindings {
			d.Bindings[i].VHost = one
		}
	}
	r := m.s.router
	fail := func(what string, err error) error {
		he, _ := coreError(err).(*echo.HTTPError)
		return apiError(he.Code, fmt.Sprintf("importing %s: %v (definitions before it were applied)", what, he.Message))
	}
	for _, v := range d.VHosts {
		desc, _ := v.Metadata["description"].(string)
		tags, _ := mgParseTags(v.Metadata["tags"])
		dqt, _ := v.Metadata["default_queue_type"].(string)
		if err := r.PutVHost(v.Name, desc, tags, dqt); err != nil {
			return fail("vhost '"+v.Name+"'", err)
		}
	}
	for _, u := range d.Users {
		tags, err := mgParseTags(u.Tags)
		if err != nil {
			return err
		}
		switch {
		case u.Password != "":
			err = r.PutUser(u.Name, u.Password, "", tags)
		case u.PasswordHash != "":
			err = r.PutUserHash(u.Name, u.PasswordHash, u.HashingAlgorithm, tags)
		default:
			err = r.PutUser(u.Name, "", "", tags)
		}
		if err != nil {
			return fail("user '"+u.Name+"'", err)
		}
	}
	// Topology is declared through the core as the importing user, so the
	// core's checks apply. The administrator gets full permissions on each
	// vhost touched for the time of the import (the core has no
	// unchecked channel); the previous permissions are mgPut back after,
	// unless the document sets them.
	me := mgUser(c).Name
	touched := map[string]bool{}
	for _, q := range d.Queues {
		touched[q.VHost] = true
	}
	for _, x := range d.Exchanges {
		touched[x.VHost] = true
	}
	for _, b := range d.Bindings {
		touched[b.VHost] = true
	}
	restore := map[string]*mapping.Permission{}
	defer func() {
		for vh, p := range restore {
			if p != nil {
				r.SetPermissions(*p)
			} else {
				r.ClearPermissions(me, vh)
			}
		}
	}()
	for vh := range touched {
		if _, err := r.VHost(vh); err != nil {
			return apiError(http.StatusBadRequest, fmt.Sprintf("the definitions use vhost '%s', which does not exist and is not defined in them", vh))
		}
		var old *mapping.Permission
		if ps := r.Permissions(vh, me); len(ps) > 0 {
			old = &ps[0]
			if old.Configure == ".*" && old.Write == ".*" && old.Read == ".*" {
				continue
			}
		}
		if err := r.SetPermissions(mapping.Permission{User: me, VHost: vh, Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
			return fail("permissions for the import", err)
		}
		restore[vh] = old
	}
	for _, x := range d.Exchanges {
		xargs, err := msgcodec.TableFromJSON(x.Arguments, "arguments")
		if err != nil {
			return fail("exchange '"+x.Name+"'", err)
		}
		spec := mapping.ExchangeSpec{Name: x.Name, Type: x.Type, Durable: x.Durable.or(true), AutoDelete: x.AutoDelete.or(false), Internal: x.Internal.or(false), Args: xargs}
		if err := m.declareIgnoringConflicts(c, x.VHost, func(ch *mapping.Channel) error { return ch.DeclareExchange(spec, false) }); err != nil {
			return fail("exchange '"+x.Name+"'", err)
		}
	}
	for _, q := range d.Queues {
		qargs, err := msgcodec.TableFromJSON(q.Arguments, "arguments")
		if err != nil {
			return fail("queue '"+q.Name+"'", err)
		}
		spec := mapping.QueueSpec{Name: q.Name, Durable: q.Durable.or(true), AutoDelete: q.AutoDelete.or(false), Args: qargs}
		// Only an existing queue is left as it is: a new one that cannot be
		// declared (a stream queue, arguments its type refuses) fails the
		// import instead of being skipped without a word.
		declare := m.withChannel
		if vh, err := r.VHost(q.VHost); err == nil {
			if _, err := vh.Queue(q.Name); err == nil {
				declare = m.declareIgnoringConflicts
			}
		}
		if err := declare(c, q.VHost, func(ch *mapping.Channel) error { _, err := ch.DeclareQueue(spec, false); return err }); err != nil {
			return fail("queue '"+q.Name+"'", err)
		}
	}
	for _, b := range d.Bindings {
		args, err := msgcodec.TableFromJSON(b.Arguments, "arguments")
		if err != nil {
			return fail("binding", err)
		}
		err = m.withChannel(c, b.VHost, func(ch *mapping.Channel) error {
			if b.DestinationType == "exchange" {
				return ch.BindExchange(b.Destination, b.Source, b.RoutingKey, args)
			}
			return ch.BindQueue(b.Destination, b.Source, b.RoutingKey, args)
		})
		if err != nil {
			return fail(fmt.Sprintf("binding from '%s' to '%s'", b.Source, b.Destination), err)
		}
	}
	for _, p := range d.Permissions {
		if err := r.SetPermissions(p); err != nil {
			return fail(fmt.Sprintf("permissions of '%s' on '%s'", p.User, p.VHost), err)
		}
		if p.User == me {
			delete(restore, p.VHost)
		}
	}
	if err := m.importShovels(c, &d, one); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// declareIgnoringConflicts declares, leaving an existing object that
// differs as it is (RabbitMQ's merge rule for immutable objects).
func (m *mgmt) declareIgnoringConflicts(c echo.Context, vhost string, fn func(ch *mapping.Channel) error) error {
	err := m.withChannel(c, vhost, fn)
	if err != nil {
		var he *echo.HTTPError
		if mgAsHTTP(err, &he) && he.Code == http.StatusConflict {
			return nil
		}
	}
	return err
}

func mgAsHTTP(err error, target **echo.HTTPError) bool {
	he, ok := err.(*echo.HTTPError)
	if ok {
		*target = he
	}
	return ok
}

// mgReadDefinitions takes the document as the JSON body or, from a browser
// form, as the multipart field "file".
// mgDecodeDefinitions reads an uploaded document: the validator's tree
// when it decoded the body (a JSON upload), else the bytes (a multipart
// upload, or one too large to validate) parsed here.
func mgDecodeDefinitions(c echo.Context) (mgDefinitions, error) {
	var d mgDefinitions
	if ok, err := mgValidated(c, &d, mgMaxDefinitions, "definitions"); ok {
		return d, err
	}
	raw, err := mgReadDefinitions(c)
	if err != nil {
		return d, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return d, apiError(http.StatusBadRequest, "the definitions are not valid JSON in RabbitMQ's format: "+err.Error())
	}
	return d, nil
}

func mgReadDefinitions(c echo.Context) ([]byte, error) {
	r := c.Request()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		fh, err := c.FormFile("file")
		if err != nil {
			return nil, apiError(http.StatusBadRequest, "multipart upload without a 'file' field")
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, mgMaxDefinitions))
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, mgMaxDefinitions))
	if err != nil {
		return nil, apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("definitions larger than %d bytes", mgMaxDefinitions))
	}
	return b, nil
}
