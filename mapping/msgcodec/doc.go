// Package msgcodec is the one JSON and HTTP form of AMQP messages that the
// gateway's fronts share (REST, the WebSocket JSON protocol, STOMP header
// values and the management API), and that the shovel's webhooks send:
// basic properties, field tables with typed values, payload encodings and
// the X-Amqp-* header form of properties. Fronts import it; it imports
// only the core (mapping), so that no front imports another. It sits
// under mapping, not gateway, because mapping/shovel needs it too.
//
// Field tables in JSON: a string is a long string (S), a whole number a
// 64-bit integer (l), another number a double (d), true/false a boolean
// (t), null a void (V), an object a nested table (F) and an array an
// array (A). Values JSON has no type for are one-key objects: a byte array
// (x) is {"$bytes": "<base64>"} and a timestamp (T) {"$timestamp": <Unix
// seconds>}. Narrower integers and floats are written as numbers and come
// back as l and d; a decimal (D) is written as its number. Nesting is
// limited to mapping.MaxTableDepth, the core's limit.
package msgcodec
