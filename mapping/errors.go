package mapping

import (
	"errors"
	"fmt"
)

// Kind says what class of failure an Error is. Each front maps a Kind to its
// own vocabulary in one table: an AMQP reply code, an HTTP status, a
// WebSocket error code.
type Kind uint8

const (
	KindNotFound           Kind = iota + 1 // AMQP 404, HTTP 404
	KindAccessRefused                      // AMQP 403, HTTP 403
	KindResourceLocked                     // AMQP 405, HTTP 423
	KindPreconditionFailed                 // AMQP 406, HTTP 409/412
	KindNotAllowed                         // AMQP 530 (connection error), HTTP 403
	KindCommandInvalid                     // AMQP 503 (connection error), HTTP 400
	KindNotImplemented                     // AMQP 540 (connection error), HTTP 501
	KindResourceError                      // AMQP 506, HTTP 503
	KindInternal                           // AMQP 541, HTTP 500
)

// Error is what the core returns for a refused operation. Text is written
// for a person and names the object involved, as RabbitMQ's texts do
// ("no queue 'q' in vhost '/'").
type Error struct {
	Kind Kind
	Text string
}

func (e *Error) Error() string { return e.Text }

// Is lets errors.Is(err, mapping.ErrNotFound) match any Error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Text == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is; they carry no text.
var (
	ErrNotFound           = &Error{Kind: KindNotFound}
	ErrAccessRefused      = &Error{Kind: KindAccessRefused}
	ErrResourceLocked     = &Error{Kind: KindResourceLocked}
	ErrPreconditionFailed = &Error{Kind: KindPreconditionFailed}
	ErrNotAllowed         = &Error{Kind: KindNotAllowed}
	ErrCommandInvalid     = &Error{Kind: KindCommandInvalid}
	ErrNotImplemented     = &Error{Kind: KindNotImplemented}
	ErrResourceError      = &Error{Kind: KindResourceError}
	ErrInternal           = &Error{Kind: KindInternal}
)

// ErrClosed is returned once the router has been closed.
var ErrClosed = errors.New("warren is shutting down")

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Text: fmt.Sprintf(format, args...)}
}

func noQueue(vh, name string) *Error {
	return errorf(KindNotFound, "no queue '%s' in vhost '%s'", name, vh)
}

// queueDeleted is why a consumer of a deleted queue was cancelled.
func queueDeleted(q *Queue) *Error {
	return errorf(KindNotFound, "queue '%s' in vhost '%s' was deleted", q.name, q.vh.name)
}

func noExchange(vh, name string) *Error {
	return errorf(KindNotFound, "no exchange '%s' in vhost '%s'", name, vh)
}

func lockedQueue(vh, name string) *Error {
	return errorf(KindResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", name, vh)
}

// KindOf returns the Kind of err, or KindInternal for errors the core did
// not classify.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
