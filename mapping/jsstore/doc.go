// Package jsstore is Warren's storage adapter onto an embedded NATS
// JetStream. It is the only package in Warren that imports nats-server or
// nats.go; everything above it (package mapping) sees plain Go types.
//
// # What it owns
//
// [Open] starts a nats-server inside the process (JetStream on, file store
// under Config.Dir/jetstream, no TCP listener, no signal handlers, server
// name "warren") and connects to it with an in-process connection. [Store.Close]
// tears all of that down again.
//
// # Cluster mode
//
// With Config.Cluster set (cluster.go) the server instead joins a NATS
// cluster with clustered JetStream: server name = node name, cluster name
// "warren", routes authenticated by the shared secret (TLS when given),
// and a client listener on loopback behind a random token, because
// routing does not start without one (nats-server#5174). Open waits for
// the JetStream meta leader within ClusterConfig.FormTimeout and refuses
// a data directory of the other mode or another node (layout.go). The
// metadata is shared: bucket "warren_meta" (file) and "warren_live"
// (file, transient topology), replicas min(3, cluster size), written
// with compare-and-set and followed with [Store.KVWatch] (kvwatch.go).
// Logs stay the node's own: names prefixed with [Store.LogPrefix], every
// log R1 and placed on the node (placed.go), and Logs lists only the
// node's own. [Store.ClusterStatus] reports routes and the meta
// group; [Store.Broadcast] and [Store.Listen] are a small core-NATS bus
// between the nodes (mapping's heartbeats use it), and [Store.OpenBus] a
// connection of its own with requests and replies for mapping's node link
// (bus.go).
//
// # Layout on JetStream
//
//   - Metadata: one KV bucket "warren_meta" (file storage, history 1). Keys
//     are chosen by the caller ("q.<vhost>.<queue>", ...); values are opaque.
//   - Logs: one stream per durable queue, stream "WL_<name>", subject
//     "warren.log.<name>", Limits retention, file storage, no age/count/size
//     limit, MaxMsgSize -1 (bounded by the server's max_payload), direct get
//     allowed. The log is append-only from JetStream's point of view: the
//     routing core decides what is consumed and removes it itself with
//     [Store.PurgeBelow] (the acknowledged prefix) and [Store.DeleteSeq]
//     (out-of-order holes). It reads records back in batches with
//     [Store.ReadBatch] (one batched direct get, no consumer): a queue's
//     window at start and its paged messages as the window drains;
//     [Store.Replay] reads a whole log (priority queues, which are not
//     paged). Records that must not survive a restart (transient messages
//     paged out of memory) are appended with [Reservation.AppendTransient]
//     to the subject "warren.log.<name>.t", never wait for an fsync, have
//     their own in-flight budget ([Store.ReserveTransient]) and are
//     removed at start with [Store.PurgeTransient].
//
// # Appends
//
// [Store.Append] publishes to the log subject with a reply subject under a
// private inbox "_WRACK.<nuid>.<id>" and returns at once. One subscription
// on "_WRACK.<nuid>.*" receives every JetStream PubAck and completes the
// matching pending callback. The number and total size of outstanding
// appends are bounded (64k records, 64 MiB). [Store.Reserve] waits for
// room and is the only call of the append path that waits: callers
// reserve before taking their own locks and then append into the room
// ([Reservation.Append]) without waiting; Append does both. Appends go
// out over three in-process connections; a log keeps one while it has
// appends outstanding, which keeps its records in order, and otherwise
// takes the least busy, so that small appends of one log do not queue
// behind large ones of another.
//
// # Goroutines
//
// The store starts, besides the goroutines of nats-server and nats.go:
//   - the ack subscription handler (run by nats.go, one goroutine) which calls
//     Append callbacks;
//   - one sweeper goroutine that fails appends older than the ack timeout;
//   - with Config.SyncAlways, the group syncer (groupsync.go): one
//     goroutine fsyncs the block files of the logs a batch of PubAcks
//     touched, and a second one then runs the batch's callbacks, so the
//     next fsync need not wait for them. The syncer keeps the newest
//     block file of each log open and per round checks only that the file
//     is still in place and whether the next block index exists (two
//     stats and one fsync); a new block is followed by an fsync of the
//     directory, and anything unexpected (purge, log deleted and created
//     again) by a fresh read of the directory.
//
// Callbacks are serialised (never two at once) and must not block on
// Append or Flush of the same store, nor wait for a lock whose holder may
// append. With SyncAlways a callback reporting success means the record
// was found in a block file that was fsynced (see groupsync.go: the
// syncer fails closed). Close waits for all of these and for
// the server to finish its shutdown.
package jsstore
