// Package httpprops is the one mapping between AMQP message properties and
// HTTP headers: Content-Type, Content-Encoding and X-Amqp-* headers, as the
// REST API answers a get and as the shovel's webhook destination posts a
// message. It lives below both so that neither front nor shovel keeps its
// own copy.
package httpprops
