// Package shovel runs dynamic shovels: RabbitMQ's "shovel" runtime
// parameters, each of which moves messages from a source queue (or an
// exchange, through a private queue) to a destination, which is an AMQP
// 0-9-1 broker or an HTTP(S) endpoint (a webhook).
//
// Definitions are stored by the core as runtime parameters (component
// "shovel", see mapping/params.go), beside the other definitions, so they
// survive restarts and appear in the definitions export. The Manager
// starts one runner per definition; a runner connects both ends, moves
// messages and, when either end fails, reconnects with a back-off that
// starts at reconnect-delay and doubles up to a minute.
//
// "amqp://" without a host means this broker (the path names the vhost,
// "/" when empty). Such an end talks to the core directly, through a
// hidden core connection of the user who created the shovel, rather than
// through the local AMQP listener: the core then applies that user's
// permissions exactly as it does for an AMQP client, without the shovel
// needing the user's password (the core stores only hashes), and no
// message is encoded and parsed twice on the way. Remote brokers are
// reached with amqp091-go.
//
// Acknowledgement modes: with on-confirm (the default) a message is acked
// at the source only after the destination confirmed it (a publisher
// confirm, a stored message in this broker, a 2xx answer of a webhook);
// anything not confirmed when an end fails stays unacked and the source
// broker requeues it when the connection closes, so a crash of either
// side or of the link loses nothing (messages may arrive twice).
// on-publish acks once the message is sent; no-ack consumes without acks.
//
// Webhooks POST the body as it is, with Content-Type and the X-Amqp-*
// headers of the REST API (package msgcodec), X-Amqp-Delivery-Count and
// optionally an HMAC-SHA256 signature. A failed POST holds the message for
// an exponential back-off and then requeues it at the source, whose
// x-delivery-limit and dead-letter exchange decide when it stops.
// Requests in flight are bounded by prefetch-count.
//
// Goroutines: one per runner (stopped by Manager.Close or Delete); remote
// ends add amqp091's and one pump per connection, which end with the
// connection; webhook requests run one goroutine each, bounded by the
// prefetch, and end with the run's context.
package shovel
