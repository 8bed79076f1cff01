package mapping

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/warrenmq/warren/mapping/jsstore"
)

// Placement: the node a new queue is homed on, in a cluster. By default
// the declaring node (RabbitMQ's client-local); a queue argument or the
// node's configuration can ask for the node with the fewest queues
// (balanced) or a random one, and the configuration can keep queues on
// some nodes only (front nodes that hold connections, not queues). A
// queue placed on another node is declared there, over the link
// (linkdeclare.go): only the home creates a queue's log and timers.
//
// Exclusive queues always stay with their connection (they die with it),
// as in RabbitMQ.

// Queue locators: the values of the x-queue-leader-locator (quorum) and
// x-queue-master-locator (classic) arguments and of
// PlacementConfig.Locator.
const (
	LocatorClientLocal = "client-local"
	LocatorBalanced    = "balanced"
	locatorMinMasters  = "min-masters" // RabbitMQ 3.x classic name of balanced
	locatorRandom      = "random"      // RabbitMQ 3.x classic
)

// PlacementConfig says where new queues are homed in a cluster; the zero
// value homes each queue on the node that declares it.
type PlacementConfig struct {
	// Locator is the locator of a declaration that names none:
	// LocatorClientLocal ("" too) or LocatorBalanced.
	Locator string
	// Nodes, when not empty, are the only nodes new queues (exclusive
	// ones aside) are homed on; a declare on another node creates its
	// queue on one of them. Give every node the same list.
	Nodes []string
}

// Check validates the configuration.
func (c PlacementConfig) Check() error {
	switch c.Locator {
	case "", LocatorClientLocal, LocatorBalanced:
	default:
		return fmt.Errorf("queue leader locator %q: want %s or %s", c.Locator, LocatorClientLocal, LocatorBalanced)
	}
	for _, n := range c.Nodes {
		if err := jsstore.CheckNodeName(n); err != nil {
			return fmt.Errorf("queue nodes: %w", err)
		}
	}
	return nil
}

// balancedRandomAbove: with more queues than this in the node's model,
// balanced picks a random node instead of counting (as RabbitMQ does, so
// that a declare does not walk a huge model).
const balancedRandomAbove = 1000

// locatorArg is the locator argument s names, if any (checked by
// checkLocatorArgs).
func locatorArg(s QueueSpec) string {
	for _, k := range []string{"x-queue-leader-locator", "x-queue-master-locator"} {
		if v, ok := s.Args[k].(string); ok {
			return v
		}
	}
	return ""
}

// checkLocatorArgs refuses a locator argument with a value RabbitMQ does
// not know (406, as RabbitMQ's argument validation).
func checkLocatorArgs(args Table) error {
	for k, ok := range map[string][]string{
		"x-queue-leader-locator": {LocatorClientLocal, LocatorBalanced},
		"x-queue-master-locator": {LocatorClientLocal, LocatorBalanced, locatorMinMasters, locatorRandom},
	} {
		v, given := args[k]
		if !given {
			continue
		}
		if s, isStr := v.(string); !isStr || !slices.Contains(ok, s) {
			return errorf(KindPreconditionFailed, "invalid arg '%s': '%v' is not one of %v", k, v, ok)
		}
	}
	return nil
}

// placement lists the nodes to try, in order, to home a new queue of
// spec s; nil means this node. Only running nodes are listed.
func (r *Router) placement(s QueueSpec) []string {
	if r.link == nil || s.Exclusive {
		return nil
	}
	if s.Node != "" {
		if s.Node == r.NodeName() {
			return nil
		}
		return []string{s.Node}
	}
	loc := locatorArg(s)
	if loc == "" {
		loc = r.cfg.Placement.Locator
	}
	allowed := r.cfg.Placement.Nodes
	if len(allowed) == 0 && (loc == "" || loc == LocatorClientLocal) {
		return nil // the default: no need to look at the other nodes
	}
	self := r.NodeName()
	var cands []string
	if len(allowed) > 0 {
		for _, n := range allowed {
			if n == self || r.nodeRunning(n) {
				cands = append(cands, n)
			}
		}
		if len(cands) == 0 {
			return slices.Clone(allowed) // none running: try them anyway, for a clear error
		}
	} else {
		for _, n := range r.Nodes() {
			if n.Self || n.Running {
				cands = append(cands, n.Name)
			}
		}
	}
	switch loc {
	case "", LocatorClientLocal:
		if slices.Contains(cands, self) {
			return nil
		}
		loc = LocatorBalanced // this node holds no queues: spread them
	}
	if i := slices.Index(cands, self); i > 0 {
		cands[0], cands[i] = cands[i], cands[0] // ties stay here: no link hop
	}
	if loc == LocatorBalanced || loc == locatorMinMasters {
		if counts, ok := r.homeCounts(); ok {
			slices.SortStableFunc(cands, func(a, b string) int { return counts[a] - counts[b] })
		} else {
			loc = locatorRandom
		}
	}
	if loc == locatorRandom {
		rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	}
	if len(cands) > 0 && cands[0] == self {
		return nil
	}
	return cands
}

// homeCounts counts the queues of every vhost by home node; ok is false
// when there are more than balancedRandomAbove.
func (r *Router) homeCounts() (map[string]int, bool) {
	counts := map[string]int{}
	total := 0
	r.mu.RLock() // r.mu before vh.mu (locksordering.txt)
	defer r.mu.RUnlock()
	for _, vh := range r.vhosts {
		vh.mu.RLock()
		total += len(vh.queues)
		if total <= balancedRandomAbove {
			for _, q := range vh.queues {
				counts[q.homeNode()]++
			}
		}
		vh.mu.RUnlock()
		if total > balancedRandomAbove {
			return nil, false
		}
	}
	return counts, true
}

// isNode reports whether node is a node of the cluster this one knows of
// (running or not).
func (r *Router) isNode(node string) bool {
	for _, n := range r.Nodes() {
		if n.Name == node {
			return true
		}
	}
	return false
}
