// Package amqpserver is Warren's AMQP 0-9-1 front: the listener, the
// connection and channel state machines and method dispatch. It translates
// between the wire (package wire, generated from the specification) and
// the routing core (package mapping); it holds no broker state beyond what
// a connection and its channels need.
//
// Goroutines: Serve runs the accept loop; ServeConn serves one connection
// accepted elsewhere (AMQP over WebSocket) in the caller's goroutine as
// the reader. Each connection has exactly two
// goroutines: the reader (conn.serve → readLoop), which owns the socket's
// read side and every channel's state, and the writer (conn.writeLoop),
// the only writer of the socket. Everybody else — replies from the reader,
// deliveries pushed by the core from other connections' readers, publisher
// confirms from store callbacks — appends encoded frames to the
// connection's outbox. Publisher confirms are coalesced as RabbitMQ's are
// (confirms.go): those ready together leave as one basic.ack
// multiple=true. Shutdown closes every connection with 320 and waits for
// both goroutines of each. After a client's connection.close the reader
// stops the writer once close-ok is out and waits (bounded) for the client
// to close the socket, as RabbitMQ does.
//
// TLS: Serve takes any net.Listener; given a tls.Listener (cmd/warren
// builds one for AMQPS) the TLS handshake runs on the first read, inside
// the handshake deadline. Login (login.go) takes PLAIN and AMQPLAIN, and
// EXTERNAL when the client presented a certificate the listener verified:
// the user is the certificate's common name, as rabbitmq_auth_mechanism_ssl.
//
// Back-pressure: when the outbox holds more than highWater bytes the core
// is told (Sink.Deliver returns false) to stop delivering to that channel
// until the writer drains it; above hardLimit the reader stops reading, so
// the client feels TCP back-pressure.
//
// Errors: every protocol exception is an amqpError whose reply code decides
// (wire.IsHardError) whether the channel or the connection closes; errors
// from the core are mapped to reply codes in one table (errors.go).
package amqpserver
