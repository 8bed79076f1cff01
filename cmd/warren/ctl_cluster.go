package main

import (
	"fmt"
	"text/tabwriter"
)

// ctlClusterStatus is rabbitmqctl cluster_status: the cluster's name, its
// nodes and which of them run, from the node asked (GET /api/overview and
// /api/nodes), and each node's health as that node sees it: its route and
// its place in the JetStream meta group.
func ctlClusterStatus(c *ctl, _ []string) error {
	var ov map[string]any
	if err := c.call("GET", "/api/overview", nil, &ov); err != nil {
		return err
	}
	var nodes []map[string]any
	if err := c.call("GET", "/api/nodes", nil, &nodes); err != nil {
		return err
	}
	var all, running, alarms []string
	var self map[string]any
	for _, n := range nodes {
		name := fmt.Sprint(n["name"])
		all = append(all, name)
		if n["running"] == true {
			running = append(running, name)
		}
		if n["mem_alarm"] == true {
			alarms = append(alarms, "memory alarm on "+name)
		}
		if n["disk_free_alarm"] == true {
			alarms = append(alarms, "disk alarm on "+name)
		}
		if n["name"] == ov["node"] {
			self = n
		}
	}
	if c.formatter == "json" {
		out := map[string]any{"cluster_name": ov["cluster_name"], "disk_nodes": all, "running_nodes": running,
			"alarms": ctlNonNil(alarms), "nodes": nodes}
		if self != nil {
			out["routes_refused"] = self["routes_refused"]
			out["last_route_refused"] = self["last_route_refused"]
			out["cut_off"] = self["cut_off"]
			if r, ok := self["cut_off_reason"]; ok {
				out["cut_off_reason"] = r
			}
		}
		return ctlWriteJSON(c.stdout, out)
	}
	c.info("Cluster status of node %v ...", ov["node"])
	w := c.stdout
	fmt.Fprintf(w, "Basics\n\nCluster name: %v\n\nDisk Nodes\n\n", ov["cluster_name"])
	for _, n := range all {
		fmt.Fprintln(w, n)
	}
	fmt.Fprint(w, "\nRunning Nodes\n\n")
	for _, n := range running {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "\nHealth (as %v sees it)\n\n", ov["node"])
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tRunning\tRoute\tJetStream meta\tLast heartbeat")
	for _, n := range nodes {
		route, meta, seen := "-", "-", "-"
		if _, ok := n["route_connected"]; ok {
			switch {
			case n["name"] == ov["node"]:
				route = "self"
			case n["route_connected"] == true:
				route = "connected"
			default:
				route = "down"
			}
			switch {
			case n["meta_leader"] == true:
				meta = "leader"
			case n["meta_offline"] == true:
				meta = "offline"
			case n["meta_current"] == true:
				meta = "follower, current"
			default:
				meta = "follower"
			}
		}
		if v, ok := n["last_seen"]; ok {
			seen = fmt.Sprintf("%.1fs ago", ctlNum(v)/1000)
		}
		fmt.Fprintf(tw, "%v\t%v\t%s\t%s\t%s\n", n["name"], n["running"], route, meta, seen)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if self != nil && ctlNum(self["routes_refused"]) > 0 {
		fmt.Fprintf(w, "\nRefused routes: %v (last: %v)\n", self["routes_refused"], self["last_route_refused"])
	}
	if self != nil && self["cut_off"] == true {
		fmt.Fprintf(w, "\nCut off: %v\n", self["cut_off_reason"])
	}
	fmt.Fprint(w, "\nAlarms\n\n")
	if len(alarms) == 0 {
		fmt.Fprintln(w, "(none)")
	}
	for _, a := range alarms {
		fmt.Fprintln(w, a)
	}
	return nil
}

func ctlNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
