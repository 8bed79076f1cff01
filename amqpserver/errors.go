package amqpserver

import (
	"errors"
	"fmt"

	"github.com/warrenmq/warren/amqpserver/wire"
	"github.com/warrenmq/warren/mapping"
)

// amqpError is a protocol exception. Whether it closes the channel or the
// whole connection follows from its code (wire.IsHardError), decided where
// the error is made.
type amqpError struct {
	code     uint16
	text     string
	classID  uint16
	methodID uint16
}

func (e *amqpError) Error() string { return e.replyText() }

// replyText is "CODE_NAME - explanation", as RabbitMQ writes it, cut to
// fit a short string.
func (e *amqpError) replyText() string {
	s := wire.ReplyCodeName(e.code) + " - " + e.text
	if len(s) > 255 {
		s = s[:252] + "..."
	}
	return s
}

func (e *amqpError) hard() bool { return wire.IsHardError(e.code) }

func newError(code uint16, m wire.Method, format string, args ...any) *amqpError {
	e := &amqpError{code: code, text: fmt.Sprintf(format, args...)}
	if m != nil {
		e.classID, e.methodID = m.ClassID(), m.MethodID()
	}
	return e
}

// kindCodes maps the core's error kinds to AMQP reply codes: the one
// table for this front.
var kindCodes = map[mapping.Kind]uint16{
	mapping.KindNotFound:           wire.NotFound,
	mapping.KindAccessRefused:      wire.AccessRefused,
	mapping.KindResourceLocked:     wire.ResourceLocked,
	mapping.KindPreconditionFailed: wire.PreconditionFailed,
	mapping.KindNotAllowed:         wire.NotAllowed,
	mapping.KindCommandInvalid:     wire.CommandInvalid,
	mapping.KindNotImplemented:     wire.NotImplemented,
	mapping.KindResourceError:      wire.ResourceError,
	mapping.KindInternal:           wire.InternalError,
}

// fromCore turns an error from package mapping into a protocol exception
// for method m.
func fromCore(err error, m wire.Method) *amqpError {
	var ae *amqpError
	if errors.As(err, &ae) {
		return ae
	}
	code, ok := kindCodes[mapping.KindOf(err)]
	if !ok {
		code = wire.InternalError
	}
	return newError(code, m, "%s", err.Error())
}
