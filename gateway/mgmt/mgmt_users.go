package mgmt

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
)

// ---------------------------------------------------------------------------
// vhosts

type mgVHostJSON struct {
	Name                   string            `json:"name"`
	Description            string            `json:"description"`
	Tags                   []string          `json:"tags"`
	Metadata               map[string]any    `json:"metadata"`
	Tracing                bool              `json:"tracing"`
	DefaultQueueType       string            `json:"default_queue_type"`
	ClusterState           map[string]string `json:"cluster_state"`
	Messages               int               `json:"messages"`
	MessagesDetails        rateDetails       `json:"messages_details"`
	MessagesReady          int               `json:"messages_ready"`
	MessagesReadyDetails   rateDetails       `json:"messages_ready_details"`
	MessagesUnacked        int               `json:"messages_unacknowledged"`
	MessagesUnackedDetails rateDetails       `json:"messages_unacknowledged_details"`
}

func (m *mgmt) vhostInfo(vh *mapping.VHost) mgVHostJSON {
	var ready, unacked int
	for _, q := range vh.Queues() {
		ready += q.Ready
		unacked += q.Unacked
	}
	r := m.rates.rates("v\x00"+vh.Name(), float64(ready+unacked), float64(ready), float64(unacked))
	desc, tags := vh.Meta()
	return mgVHostJSON{
		Name: vh.Name(), Description: desc, Tags: mgTags(tags),
		Metadata:         mgVHostMeta(vh),
		DefaultQueueType: vh.DefaultQueueType(), ClusterState: map[string]string{m.node: "running"},
		Messages: ready + unacked, MessagesDetails: rateDetails{r[0]},
		MessagesReady: ready, MessagesReadyDetails: rateDetails{r[1]},
		MessagesUnacked: unacked, MessagesUnackedDetails: rateDetails{r[2]},
	}
}

// mgVHostMeta is a vhost's metadata as RabbitMQ 3.10 shows and exports
// it: description, tags and, when the vhost has its own, its default
// queue type.
func mgVHostMeta(vh *mapping.VHost) map[string]any {
	desc, tags := vh.Meta()
	md := map[string]any{"description": desc, "tags": mgTags(tags)}
	if t := vh.OwnDefaultQueueType(); t != "" {
		md["default_queue_type"] = t
	}
	return md
}

func (m *mgmt) listVHosts(c echo.Context) error {
	out := []mgVHostJSON{}
	for _, name := range m.visibleVHosts(mgUser(c)) {
		if vh, err := m.s.router.VHost(name); err == nil {
			out = append(out, m.vhostInfo(vh))
		}
	}
	return mgList(c, out)
}

func (m *mgmt) getVHost(c echo.Context) error {
	name, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	vh, err := m.vhost(c, name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m.vhostInfo(vh))
}

// mgVHostBody is what PUT /api/vhosts/{name} takes.
type mgVHostBody struct {
	Description string     `json:"description"`
	Tags        any        `json:"tags"`
	Tracing     mgFlexBool `json:"tracing"`
	// RabbitMQ 3.10's key for the vhost's default queue type, and the
	// name it shows it under (taken too).
	DefaultQueueType    string `json:"defaultqueuetype"`
	DefaultQueueTypeAlt string `json:"default_queue_type"`
}

// putVHost creates a vhost. As RabbitMQ's management API does, the user
// who creates it gets full permissions on it.
func (m *mgmt) putVHost(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	name, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	var body mgVHostBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	_, lookErr := m.s.router.VHost(name)
	existed := lookErr == nil
	tags, err := mgParseTags(body.Tags)
	if err != nil {
		return err
	}
	dqt := body.DefaultQueueType
	if dqt == "" {
		dqt = body.DefaultQueueTypeAlt
	}
	if err := m.s.router.PutVHost(name, body.Description, tags, dqt); err != nil {
		return coreError(err)
	}
	if !existed {
		u := mgUser(c)
		if err := m.s.router.SetPermissions(mapping.Permission{User: u.Name, VHost: name, Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
			return coreError(err)
		}
	}
	return mgCreated(c, existed)
}

func (m *mgmt) deleteVHost(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	name, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	if err := m.s.router.DeleteVHost(name); err != nil {
		return coreError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// ---------------------------------------------------------------------------
// users

type mgUserJSON struct {
	Name             string         `json:"name"`
	PasswordHash     string         `json:"password_hash"`
	HashingAlgorithm string         `json:"hashing_algorithm"`
	Tags             []string       `json:"tags"`
	Limits           map[string]any `json:"limits"`
}

func mgUserOut(u mapping.UserInfo) mgUserJSON {
	return mgUserJSON{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashingAlgorithm, Tags: mgTags(u.Tags), Limits: map[string]any{}}
}

func (m *mgmt) listUsers(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	out := []mgUserJSON{}
	for _, u := range m.s.router.Users() {
		out = append(out, mgUserOut(u))
	}
	return mgList(c, out)
}

func (m *mgmt) usersWithoutPermissions(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	out := []mgUserJSON{}
	for _, u := range m.s.router.Users() {
		if len(m.s.router.Permissions("", u.Name)) == 0 {
			out = append(out, mgUserOut(u))
		}
	}
	return mgList(c, out)
}

// mgUsersBody is what POST /api/users/bulk-delete takes.
type mgUsersBody struct {
	Users []string `json:"users"`
}

func (m *mgmt) bulkDeleteUsers(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	var body mgUsersBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	for _, u := range body.Users {
		if err := m.s.router.DeleteUser(u); err != nil && mapping.KindOf(err) != mapping.KindNotFound {
			return coreError(err)
		}
	}
	return c.NoContent(http.StatusNoContent)
}

func (m *mgmt) getUser(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	name, err := mgParam(c, "user")
	if err != nil {
		return err
	}
	u, err := m.s.router.User(name)
	if err != nil {
		return coreError(err)
	}
	return c.JSON(http.StatusOK, mgUserOut(u))
}

// mgParseTags takes RabbitMQ's comma-separated tag string or a JSON mgList.
func mgParseTags(v any) ([]string, error) {
	var raw []string
	switch t := v.(type) {
	case nil:
	case string:
		raw = strings.Split(t, ",")
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, apiError(http.StatusBadRequest, "tags must be a comma-separated string or a list of strings")
			}
			raw = append(raw, s)
		}
	default:
		return nil, apiError(http.StatusBadRequest, "tags must be a comma-separated string or a list of strings")
	}
	out := []string{}
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *mgmt) putUser(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	name, err := mgParam(c, "user")
	if err != nil {
		return err
	}
	var body map[string]any
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	tagsV, ok := body["tags"]
	if !ok {
		return apiError(http.StatusBadRequest, "key 'tags' is mandatory (use \"\" for none)")
	}
	tags, err := mgParseTags(tagsV)
	if err != nil {
		return err
	}
	str := func(k string) (string, bool, error) {
		v, ok := body[k]
		if !ok || v == nil {
			return "", false, nil
		}
		s, isStr := v.(string)
		if !isStr {
			return "", true, apiError(http.StatusBadRequest, fmt.Sprintf("key '%s' must be a string", k))
		}
		return s, true, nil
	}
	password, hasPass, err := str("password")
	if err != nil {
		return err
	}
	hash, hasHash, err := str("password_hash")
	if err != nil {
		return err
	}
	algo, _, err := str("hashing_algorithm")
	if err != nil {
		return err
	}
	_, lookErr := m.s.router.User(name)
	existed := lookErr == nil
	switch {
	case hasPass && password != "":
		err = m.s.router.PutUser(name, password, "", tags)
	case hasHash:
		err = m.s.router.PutUserHash(name, hash, algo, tags)
	default:
		err = m.s.router.PutUser(name, "", "", tags)
	}
	if err != nil {
		return coreError(err)
	}
	return mgCreated(c, existed)
}

func (m *mgmt) deleteUser(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	name, err := mgParam(c, "user")
	if err != nil {
		return err
	}
	if err := m.s.router.DeleteUser(name); err != nil {
		return coreError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// ---------------------------------------------------------------------------
// permissions

func mgPerms(ps []mapping.Permission) []mapping.Permission {
	if ps == nil {
		return []mapping.Permission{}
	}
	return ps
}

func (m *mgmt) listPermissions(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	return mgList(c, mgPerms(m.s.router.Permissions("", "")))
}

func (m *mgmt) vhostPermissions(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return err
	}
	if _, err := m.vhost(c, vhost); err != nil {
		return err
	}
	return mgList(c, mgPerms(m.s.router.Permissions(vhost, "")))
}

func (m *mgmt) userPermissions(c echo.Context) error {
	if err := mgRequireAdmin(c); err != nil {
		return err
	}
	user, err := mgParam(c, "user")
	if err != nil {
		return err
	}
	if _, err := m.s.router.User(user); err != nil {
		return coreError(err)
	}
	return mgList(c, mgPerms(m.s.router.Permissions("", user)))
}

func (m *mgmt) permParams(c echo.Context) (vhost, user string, err error) {
	if err := mgRequireAdmin(c); err != nil {
		return "", "", err
	}
	if vhost, err = mgParam(c, "vhost"); err != nil {
		return
	}
	user, err = mgParam(c, "user")
	return
}

func (m *mgmt) getPermission(c echo.Context) error {
	vhost, user, err := m.permParams(c)
	if err != nil {
		return err
	}
	ps := m.s.router.Permissions(vhost, user)
	if len(ps) == 0 {
		return apiError(http.StatusNotFound, fmt.Sprintf("no permissions for user '%s' in vhost '%s'", user, vhost))
	}
	return c.JSON(http.StatusOK, ps[0])
}

func (m *mgmt) putPermission(c echo.Context) error {
	vhost, user, err := m.permParams(c)
	if err != nil {
		return err
	}
	var body map[string]any
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	p := mapping.Permission{User: user, VHost: vhost}
	for _, f := range []struct {
		key string
		dst *string
	}{{"configure", &p.Configure}, {"write", &p.Write}, {"read", &p.Read}} {
		v, ok := body[f.key]
		if !ok {
			return apiError(http.StatusBadRequest, fmt.Sprintf("key '%s' is mandatory (configure, write and read regular expressions)", f.key))
		}
		switch s := v.(type) {
		case string:
			*f.dst = s
		case nil: // null leaves the pattern empty, as decoding null into a string does
		default:
			return apiError(http.StatusBadRequest, fmt.Sprintf("key '%s' must be a string", f.key))
		}
	}
	if _, err := m.s.router.VHost(vhost); err != nil {
		return apiError(http.StatusNotFound, fmt.Sprintf("no vhost '%s'", vhost))
	}
	existed := len(m.s.router.Permissions(vhost, user)) > 0
	if err := m.s.router.SetPermissions(p); err != nil {
		return coreError(err)
	}
	return mgCreated(c, existed)
}

func (m *mgmt) deletePermission(c echo.Context) error {
	vhost, user, err := m.permParams(c)
	if err != nil {
		return err
	}
	if err := m.s.router.ClearPermissions(user, vhost); err != nil {
		return coreError(err)
	}
	return c.NoContent(http.StatusNoContent)
}
