// Package mapping is Warren's routing core: the one place that knows what
// AMQP 0-9-1 means. It owns vhosts, exchanges, bindings, queues, consumers,
// prefetch, acknowledgements, TTL, dead-lettering, length limits and RPC
// replies, for every front (AMQP, REST, WebSocket) alike. Fronts translate
// their protocol into calls on Conn and Channel and receive deliveries
// through the Sink interface; the core never imports a front.
//
// Every front enters through Router.Connect (vhost admission) and
// Channel.Publish (one publish path: alarms, limits, property
// normalisation, permissions, routing, storing). Publish answers with an
// Outcome whose Refusal each front maps to its own answer in one table.
//
// Storage lives below, in package jsstore, the only importer of NATS. How
// queues, messages and metadata map onto JetStream is written down in
// README.md beside this file.
//
// Lock order (all of it, with the fronts and the store, in
// locksordering.txt at the repository root): VHost.topoMu (the topology
// writer, held across metadata store writes), then VHost.mu (read-locked
// while routing), then Queue.mu, then Channel.mu, then the front's sink
// lock. Publishing routes under VHost.mu and enqueues after releasing it;
// dead letters are collected under Queue.mu and republished after it is
// released. No core lock is held into package jsstore, and no jsstore
// callback takes one.
//
// Goroutines: the core starts one goroutine, the janitor, which removes
// consumed records from queue logs; Router.Close stops it. TTL and
// x-expires use time.AfterFunc timers that are stopped when their queue
// is deleted. Dispatch runs on the caller's goroutine: a publish delivers
// straight into consumers' sinks, an ack hands the next message over.
//
// In a cluster, every node holds every queue but only its home
// dispatches it (home.go); the node link (link*.go, README.md "Cluster:
// the node link") serves the other nodes' clients through the home over
// core NATS: publishes forwarded, consumers on shadow channels, get,
// purge, delete and counts as requests. Its goroutines (a watcher, a
// flusher) are stopped by Router.Close.
package mapping
