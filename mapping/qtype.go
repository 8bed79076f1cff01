package mapping

import (
	"fmt"
	"slices"
)

// Queue types, the values of the x-queue-type argument. On one node a
// quorum queue is a durable queue (its Raft group would have one member);
// the type is kept in the queue's arguments, as RabbitMQ keeps it, so it
// survives restarts and definitions export with the queue.
const (
	QueueTypeClassic = "classic"
	QueueTypeQuorum  = "quorum"
	queueTypeStream  = "stream"
)

// ParseDefaultQueueType checks a configured default queue type ("" is
// classic).
func ParseDefaultQueueType(s string) (string, error) {
	switch s {
	case "", QueueTypeClassic:
		return QueueTypeClassic, nil
	case QueueTypeQuorum:
		return QueueTypeQuorum, nil
	case queueTypeStream:
		return "", fmt.Errorf("default queue type %q: Warren does not implement stream queues; want classic or quorum", s)
	}
	return "", fmt.Errorf("default queue type %q: want classic or quorum", s)
}

// queueTypeOf is the type of a queue declared with args (checked by
// checkQueueType): classic unless x-queue-type says otherwise.
func queueTypeOf(args Table) string {
	if t, ok := args["x-queue-type"].(string); ok && t != "" {
		return t
	}
	return QueueTypeClassic
}

// rabbitTypeModule is how RabbitMQ names a queue type in its errors.
func rabbitTypeModule(t string) string {
	return "rabbit_" + t + "_queue"
}

// The arguments each queue type takes, as in RabbitMQ 3.10. An argument
// one of the types knows but the declared type does not is refused; an
// argument no type knows is kept and ignored. x-delivery-limit is a
// quorum argument in RabbitMQ; Warren has always honoured it on classic
// queues too, so classic keeps it.
var (
	classicArgs = []string{
		"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-delivery-limit", "x-expires",
		"x-max-length", "x-max-length-bytes", "x-max-priority", "x-message-ttl", "x-overflow",
		"x-queue-master-locator", "x-queue-mode", "x-queue-type", "x-queue-version", "x-single-active-consumer",
	}
	quorumArgs = []string{
		"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy", "x-delivery-limit",
		"x-expires", "x-max-in-memory-bytes", "x-max-in-memory-length", "x-max-length", "x-max-length-bytes",
		"x-message-ttl", "x-overflow", "x-queue-leader-locator", "x-queue-type", "x-quorum-initial-group-size",
		"x-single-active-consumer",
	}
	streamArgs = []string{
		"x-initial-cluster-size", "x-max-age", "x-max-length-bytes", "x-queue-leader-locator", "x-queue-type",
		"x-stream-max-segment-size-bytes",
	}
)

// typedArgs lists, sorted, the arguments some queue type knows.
var typedArgs = func() []string {
	all := slices.Concat(classicArgs, quorumArgs, streamArgs)
	slices.Sort(all)
	return slices.Compact(all)
}()

// withDefaultType gives a declaration without x-queue-type the node's
// default type, as RabbitMQ 3.10 applies a vhost's default queue type:
// only when that type could hold the queue (a quorum queue cannot be
// non-durable, exclusive or auto-delete, so those stay classic), and by
// adding the argument, so the queue shows it and a redeclaration is
// compared with it. args is not modified.
func withDefaultType(s QueueSpec, def string) QueueSpec {
	if def != QueueTypeQuorum || s.Args["x-queue-type"] != nil {
		return s
	}
	if !s.Durable || s.Exclusive || s.AutoDelete {
		return s
	}
	args := make(Table, len(s.Args)+1)
	for k, v := range s.Args {
		args[k] = v
	}
	args["x-queue-type"] = QueueTypeQuorum
	s.Args = args
	return s
}

// checkQueueType applies RabbitMQ 3.10's queue type rules to a new
// declaration, in RabbitMQ's order: the type itself, a server-generated
// name, the arguments the type does not take, then (after the generic
// argument checks in validateQueueArgs) the queue's properties.
func checkQueueType(s QueueSpec, vh string, serverNamed bool) error {
	v, given := s.Args["x-queue-type"]
	t := QueueTypeClassic
	if given {
		str, ok := v.(string)
		if !ok {
			return errorf(KindPreconditionFailed, "invalid arg 'x-queue-type' for queue '%s' in vhost '%s': {unacceptable_type,%s}", s.Name, vh, amqpTypeName(v))
		}
		switch str {
		case QueueTypeClassic, QueueTypeQuorum:
			t = str
		case queueTypeStream:
			return errorf(KindPreconditionFailed, "invalid arg 'x-queue-type' for queue '%s' in vhost '%s': \"unsupported queue type 'stream'\": Warren does not implement stream queues (declare a classic or quorum queue)", s.Name, vh)
		default:
			return errorf(KindPreconditionFailed, "invalid arg 'x-queue-type' for queue '%s' in vhost '%s': \"unsupported queue type '%s'\"", s.Name, vh, str)
		}
	}
	if serverNamed && t != QueueTypeClassic {
		return errorf(KindPreconditionFailed, "Cannot declare a server-named queue for type %s", rabbitTypeModule(t))
	}
	known := classicArgs
	if t == QueueTypeQuorum {
		known = quorumArgs
	}
	for _, k := range typedArgs {
		if _, ok := s.Args[k]; ok && !slices.Contains(known, k) {
			return errorf(KindPreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s' of queue type %s", k, s.Name, vh, rabbitTypeModule(t))
		}
	}
	return nil
}

// checkQueueProperties refuses the properties a quorum queue cannot have,
// with RabbitMQ's words and in its order; it runs after the argument
// checks, as in RabbitMQ.
func checkQueueProperties(s QueueSpec, vh string) error {
	if queueTypeOf(s.Args) != QueueTypeQuorum {
		return nil
	}
	prop := ""
	switch {
	case s.AutoDelete:
		prop = "auto-delete"
	case s.Exclusive:
		prop = "exclusive-owner"
	case !s.Durable:
		prop = "non-durable"
	default:
		return nil
	}
	return errorf(KindPreconditionFailed, "invalid property '%s' for queue '%s' in vhost '%s'", prop, s.Name, vh)
}

// sameDefaultType drops x-queue-type from both sides of a redeclaration
// when one side says classic and the other says nothing: RabbitMQ treats
// them as equal (a missing type is classic).
func sameDefaultType(got, cur Table) (Table, Table) {
	gv, gok := got["x-queue-type"]
	cv, cok := cur["x-queue-type"]
	if gok == cok || gok && gv != QueueTypeClassic || cok && cv != QueueTypeClassic {
		return got, cur
	}
	without := func(t Table) Table {
		out := make(Table, len(t))
		for k, v := range t {
			if k != "x-queue-type" {
				out[k] = v
			}
		}
		return out
	}
	return without(got), without(cur)
}

// checkGroupSize checks x-quorum-initial-group-size as RabbitMQ does (a
// positive integer). On one node the group is this node alone, whatever
// the size asked for, as in a RabbitMQ cluster of one.
func checkGroupSize(s QueueSpec, vh string) error {
	v, ok := s.Args["x-quorum-initial-group-size"]
	if !ok {
		return nil
	}
	n, isInt := asInt(v)
	switch {
	case !isInt:
		return errorf(KindPreconditionFailed, "invalid arg 'x-quorum-initial-group-size' for queue '%s' in vhost '%s': \"expected integer, got %s\"", s.Name, vh, amqpTypeName(v))
	case n == 0:
		return errorf(KindPreconditionFailed, "invalid arg 'x-quorum-initial-group-size' for queue '%s' in vhost '%s': {value_zero,0}", s.Name, vh)
	case n < 0:
		return errorf(KindPreconditionFailed, "invalid arg 'x-quorum-initial-group-size' for queue '%s' in vhost '%s': {value_negative,%d}", s.Name, vh, n)
	}
	return nil
}

// OwnDefaultQueueType is the default queue type set on the vhost itself
// ("" when it follows the node's).
func (vh *VHost) OwnDefaultQueueType() string {
	vh.metaMu.Lock()
	defer vh.metaMu.Unlock()
	return vh.defaultType
}

// DefaultQueueType is the queue type a declaration without x-queue-type
// gets in this vhost: the vhost's own (RabbitMQ 3.10 keeps one per vhost)
// or else the node's (--default-queue-type).
func (vh *VHost) DefaultQueueType() string {
	t := vh.OwnDefaultQueueType()
	if t == "" {
		t = vh.r.cfg.DefaultQueueType
	}
	if t == QueueTypeQuorum {
		return QueueTypeQuorum
	}
	return QueueTypeClassic
}
