package main

// `warren ctl` verbs for runtime parameters and shovels, as rabbitmqctl
// and its shovel plugin name them.

import (
	"encoding/json"
	"fmt"
)

func ctlSetParameter(c *ctl, a []string) error {
	if !json.Valid([]byte(a[2])) {
		return &ctlError{ctlExitUsage, fmt.Sprintf("the value of parameter '%s' is not valid JSON: %s", a[1], a[2])}
	}
	c.info("Setting runtime parameter \"%s\" for component \"%s\" to \"%s\" in vhost \"%s\" ...", a[1], a[0], a[2], c.vhost)
	return c.call("PUT", ctlPath("parameters", a[0], c.vhost, a[1]), map[string]any{"value": json.RawMessage(a[2])}, nil)
}

func ctlClearParameter(c *ctl, a []string) error {
	c.info("Clearing runtime parameter \"%s\" for component \"%s\" on vhost \"%s\" ...", a[1], a[0], c.vhost)
	return c.call("DELETE", ctlPath("parameters", a[0], c.vhost, a[1]), nil, nil)
}

func ctlListParameters(c *ctl, a []string) error {
	c.info("Listing runtime parameters for vhost \"%s\" ...", c.vhost)
	return c.listing(ctlPath("parameters", "shovel", c.vhost), []string{"component", "name", "value"}, a, nil)
}

func ctlShovelStatus(c *ctl, a []string) error {
	c.info("Shovel status on node ...")
	return c.listing("/api/shovels", []string{"name", "vhost", "type", "state"}, a, nil)
}

func ctlDeleteShovel(c *ctl, a []string) error {
	c.info("Deleting shovel %s in vhost %s", a[0], c.vhost)
	return c.call("DELETE", ctlPath("parameters", "shovel", c.vhost, a[0]), nil, nil)
}

func ctlRestartShovel(c *ctl, a []string) error {
	c.info("Restarting dynamic shovel %s in vhost %s", a[0], c.vhost)
	return c.call("DELETE", ctlPath("shovels", "vhost", c.vhost, a[0], "restart"), nil, nil)
}
