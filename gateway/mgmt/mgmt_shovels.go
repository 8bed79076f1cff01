package mgmt

// Shovels in the management API, in RabbitMQ's shapes: the "shovel"
// runtime parameters (/api/parameters/shovel/...), their statuses
// (/api/shovels) and their place in the definitions. The shovels
// themselves run in package mapping/shovel; this file only translates.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/shovel"
)

func (m *mgmt) shovelRoutes(api func(method, path string, h echo.HandlerFunc)) {
	const G, D, U = http.MethodGet, http.MethodDelete, http.MethodPut
	api(G, "/parameters", m.listParameters)
	api(G, "/parameters/shovel", m.listParameters)
	api(G, "/parameters/shovel/:vhost", m.listParameters)
	api(G, "/parameters/shovel/:vhost/:name", m.getShovelParameter)
	api(U, "/parameters/shovel/:vhost/:name", m.putShovelParameter)
	api(D, "/parameters/shovel/:vhost/:name", m.deleteShovelParameter)
	api(G, "/shovels", m.listShovels)
	api(G, "/shovels/:vhost", m.listShovels)
	api(D, "/shovels/vhost/:vhost/:name/restart", m.restartShovel)
}

// shovels is the server's shovel manager; 503 when it runs none.
func (m *mgmt) shovels() (*shovel.Manager, error) {
	if m.s.cfg.Shovels == nil {
		return nil, apiError(http.StatusServiceUnavailable, "shovels are not enabled on this server")
	}
	return m.s.cfg.Shovels, nil
}

// mgRequirePolicymaker: RabbitMQ lets policymakers and administrators
// read and change runtime parameters, and answers others as below.
func mgRequirePolicymaker(c echo.Context) error {
	u := mgUser(c)
	if !u.HasTag(tagPolicymaker) && !u.HasTag(tagAdministrator) {
		return apiError(http.StatusUnauthorized, "User not authorised to access object")
	}
	return nil
}

// mgParameterOut is a parameter as the API shows it: credentials in URIs
// and the webhook secret hidden.
func mgParameterOut(p mapping.Parameter) map[string]any {
	return map[string]any{"value": shovel.RedactValue(p.Value), "vhost": p.VHost, "component": p.Component, "name": p.Name}
}

// shovelVHosts checks the user with require and returns the manager and
// the vhosts of the request (the path's, or every one the user sees).
func (m *mgmt) shovelVHosts(c echo.Context, require func(echo.Context) error) (*shovel.Manager, []*mapping.VHost, error) {
	if err := require(c); err != nil {
		return nil, nil, err
	}
	sh, err := m.shovels()
	if err != nil {
		return nil, nil, err
	}
	vhs, err := m.vhostsParam(c)
	return sh, vhs, err
}

func (m *mgmt) listParameters(c echo.Context) error {
	sh, vhs, err := m.shovelVHosts(c, mgRequirePolicymaker)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, vh := range vhs {
		ps, err := sh.Parameters(vh.Name())
		if err != nil {
			return coreError(err)
		}
		for _, p := range ps {
			out = append(out, mgParameterOut(p))
		}
	}
	return mgList(c, out)
}

// shovelPath reads and checks {vhost} and {name} for a policymaker.
func (m *mgmt) shovelPath(c echo.Context) (*shovel.Manager, string, string, error) {
	if err := mgRequirePolicymaker(c); err != nil {
		return nil, "", "", err
	}
	sh, err := m.shovels()
	if err != nil {
		return nil, "", "", err
	}
	vhost, err := mgParam(c, "vhost")
	if err != nil {
		return nil, "", "", err
	}
	name, err := mgParam(c, "name")
	if err != nil {
		return nil, "", "", err
	}
	if _, err := m.vhost(c, vhost); err != nil {
		return nil, "", "", err
	}
	return sh, vhost, name, nil
}

func (m *mgmt) getShovelParameter(c echo.Context) error {
	sh, vhost, name, err := m.shovelPath(c)
	if err != nil {
		return err
	}
	p, err := sh.Parameter(vhost, name)
	if err != nil {
		return coreError(err)
	}
	return c.JSON(http.StatusOK, mgParameterOut(p))
}

// mgParameterBody is what PUT takes. rabbitmqadmin also sends component,
// vhost and name; the path decides those.
type mgParameterBody struct {
	Value     json.RawMessage `json:"value"`
	Component string          `json:"component"`
	VHost     string          `json:"vhost"`
	Name      string          `json:"name"`
}

func (m *mgmt) putShovelParameter(c echo.Context) error {
	sh, vhost, name, err := m.shovelPath(c)
	if err != nil {
		return err
	}
	var body mgParameterBody
	if err := mgBind(c, &body, mgMaxBody); err != nil {
		return err
	}
	if len(body.Value) == 0 {
		return apiError(http.StatusBadRequest, `the body needs "value", the shovel definition`)
	}
	created, err := sh.Put(vhost, name, mgUser(c).Name, body.Value)
	if errors.Is(err, shovel.ErrInvalid) {
		return apiError(http.StatusBadRequest, err.Error())
	}
	if err != nil {
		return coreError(err)
	}
	return mgCreated(c, !created)
}

func (m *mgmt) deleteShovelParameter(c echo.Context) error {
	sh, vhost, name, err := m.shovelPath(c)
	if err != nil {
		return err
	}
	if err := sh.Delete(vhost, name); err != nil {
		return coreError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (m *mgmt) restartShovel(c echo.Context) error {
	sh, vhost, name, err := m.shovelPath(c)
	if err != nil {
		return err
	}
	if err := sh.Restart(vhost, name); err != nil {
		return coreError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// listShovels answers GET /api/shovels in RabbitMQ's shape (monitoring
// and administrator users, as RabbitMQ 3.10 asks).
func (m *mgmt) listShovels(c echo.Context) error {
	sh, vhs, err := m.shovelVHosts(c, mgRequireMonitor)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, vh := range vhs {
		for _, st := range sh.Statuses(vh.Name()) {
			out = append(out, mgShovelOut(sh.Node(), st))
		}
	}
	return mgList(c, out)
}

// mgShovelOut: a running shovel lists its ends; a terminated one its
// reason; a starting one only its name, as RabbitMQ shows them.
func mgShovelOut(node string, st shovel.Status) map[string]any {
	o := map[string]any{
		"node": node, "timestamp": st.Since.Local().Format(time.DateTime),
		"name": st.Name, "vhost": st.VHost, "type": "dynamic", "state": st.State,
	}
	switch {
	case st.State == shovel.StateTerminated:
		o["reason"] = st.Reason
	case st.State == shovel.StateRunning && st.Def != nil:
		d := st.Def
		o["src_uri"], o["dest_uri"] = shovel.StripCredentials(d.SrcURIs[0]), shovel.StripCredentials(d.DestURIs[0])
		o["src_protocol"] = "amqp091"
		o["dest_protocol"] = "amqp091"
		if d.IsHTTP() {
			o["dest_protocol"] = "http"
		}
		set := func(k, v string, present bool) {
			if present {
				o[k] = v
			}
		}
		set("src_queue", d.SrcQueue, d.SrcQueue != "")
		set("src_exchange", d.SrcExchange, d.SrcQueue == "")
		set("src_exchange_key", d.SrcExchangeKey, d.SrcQueue == "")
		set("dest_queue", d.DestQueue, d.DestQueue != "")
		set("dest_exchange", d.DestExchange, d.DestExchange != "")
		set("dest_exchange_key", d.DestExchangeKey, d.DestExchange != "")
	}
	return o
}

// exportShovels adds the shovel parameters of vhosts to d (vhOut as in
// exportDefinitions). The values are exported as stored, credentials
// included, so that an import brings working shovels back.
func (m *mgmt) exportShovels(d *mgDefinitions, vhosts []string, one bool) {
	sh := m.s.cfg.Shovels
	if sh == nil {
		return
	}
	for _, vh := range vhosts {
		ps, err := sh.Parameters(vh)
		if err != nil {
			m.s.cfg.Logger.Error("export shovels", "vhost", vh, "err", err)
			continue
		}
		for _, p := range ps {
			vhOut := p.VHost
			if one {
				vhOut = ""
			}
			d.Parameters = append(d.Parameters, map[string]any{"value": p.Value, "vhost": vhOut, "component": p.Component, "name": p.Name})
		}
	}
}

// importShovels creates the shovel parameters of d, as the importing
// user; parameters of components Warren does not have are skipped, as
// policies are.
func (m *mgmt) importShovels(c echo.Context, d *mgDefinitions, one string) error {
	for _, x := range d.Parameters {
		raw, err := json.Marshal(x)
		if err != nil {
			return apiError(http.StatusBadRequest, "importing parameters: "+err.Error())
		}
		var p mgParameterBody
		if err := json.Unmarshal(raw, &p); err != nil {
			return apiError(http.StatusBadRequest, "importing parameters: "+err.Error())
		}
		if p.Component != shovel.Component {
			continue
		}
		sh, err := m.shovels()
		if err != nil {
			return err
		}
		if one != "" {
			p.VHost = one
		}
		if _, err := sh.Put(p.VHost, p.Name, mgUser(c).Name, p.Value); err != nil {
			if errors.Is(err, shovel.ErrInvalid) {
				return apiError(http.StatusBadRequest, fmt.Sprintf("importing shovel '%s': %v (definitions before it were applied)", p.Name, err))
			}
			he, _ := coreError(err).(*echo.HTTPError)
			return apiError(he.Code, fmt.Sprintf("importing shovel '%s': %v (definitions before it were applied)", p.Name, he.Message))
		}
	}
	return nil
}
