package mapping

import (
	"encoding/json"
	"sort"
	"strings"
)

// Parameter is a runtime parameter in RabbitMQ's sense: a JSON value of a
// component (such as "shovel") named within a vhost. The core stores it
// beside the other definitions (KV key r.<component>.<vhost>.<name>) and
// does not interpret the value: the component that owns it does.
type Parameter struct {
	Component string          `json:"component"`
	VHost     string          `json:"vhost"`
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
	// Owner is the user who set the parameter; a shovel acts with this
	// user's permissions.
	Owner string `json:"owner,omitempty"`
	// Node, in a cluster, is the node that acts on the parameter (a
	// shovel runs on the node it was declared on only); "" on a single
	// node.
	Node string `json:"node,omitempty"`
}

func paramPrefix(component string) string { return "r." + escapeToken(component) + "." }
func paramKey(component, vhost, name string) string {
	return paramPrefix(component) + escapeToken(vhost) + "." + escapeToken(name)
}

// PutParameter stores p, replacing a parameter of the same component,
// vhost and name. The vhost must exist.
func (r *Router) PutParameter(p Parameter) error {
	if p.Component == "" || p.Name == "" {
		return errorf(KindPreconditionFailed, "a parameter needs a component and a name")
	}
	if !json.Valid(p.Value) {
		return errorf(KindPreconditionFailed, "the value of parameter '%s' is not valid JSON", p.Name)
	}
	if _, err := r.VHost(p.VHost); err != nil {
		return errorf(KindNotFound, "no vhost '%s'", p.VHost)
	}
	if err := r.putJSON(paramKey(p.Component, p.VHost, p.Name), p); err != nil {
		return errorf(KindInternal, "store parameter '%s': %v", p.Name, err)
	}
	return nil
}

// DeleteParameter removes a parameter; KindNotFound when there is none.
func (r *Router) DeleteParameter(component, vhost, name string) error {
	if _, err := r.Parameter(component, vhost, name); err != nil {
		return err
	}
	if err := r.store.MetaDelete(paramKey(component, vhost, name)); err != nil {
		return errorf(KindInternal, "delete parameter '%s': %v", name, err)
	}
	return nil
}

// Parameter returns one parameter, KindNotFound when there is none.
func (r *Router) Parameter(component, vhost, name string) (Parameter, error) {
	ps, err := r.Parameters(component, vhost)
	if err != nil {
		return Parameter{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return Parameter{}, errorf(KindNotFound, "no %s parameter '%s' in vhost '%s'", component, name, vhost)
}

// Parameters lists a component's parameters in vhost ("" for every
// vhost), sorted by vhost and name.
func (r *Router) Parameters(component, vhost string) ([]Parameter, error) {
	prefix := paramPrefix(component)
	if vhost != "" {
		prefix += escapeToken(vhost) + "."
	}
	kvs, err := r.store.MetaList(prefix)
	if err != nil {
		return nil, errorf(KindInternal, "list parameters: %v", err)
	}
	out := make([]Parameter, 0, len(kvs))
	for key, b := range kvs {
		var p Parameter
		if err := json.Unmarshal(b, &p); err != nil {
			r.log.Error("skipping unreadable parameter record", "key", key, "err", err)
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VHost != out[j].VHost {
			return out[i].VHost < out[j].VHost
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// deleteVHostParameters removes every parameter of a deleted vhost.
func (r *Router) deleteVHostParameters(vhost string) {
	kvs, err := r.store.MetaList("r.")
	if err != nil {
		r.log.Error("list parameters of deleted vhost", "vhost", vhost, "err", err)
		return
	}
	for key := range kvs {
		// r.<component>.<vhost>.<name>: escaped tokens hold no dots.
		if parts := strings.Split(key, "."); len(parts) == 4 && parts[2] == escapeToken(vhost) {
			r.store.MetaDelete(key)
		}
	}
}
