// Package conformance drives a Warren server with a real AMQP client
// (amqp091-go) and checks it behaves as RabbitMQ does.
//
// Run against any broker with
//
//	WARREN_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5673/ go test ./amqpserver/conformance/
//
// Without WARREN_TEST_AMQP_URL the tests start an in-process Warren.
package conformance
