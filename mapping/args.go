package mapping

// validateQueueArgs checks the queue arguments Warren acts on. Unknown
// arguments are kept and ignored, as RabbitMQ does.
func validateQueueArgs(args Table) error {
	for k, v := range args {
		switch k {
		case "x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-max-priority", "x-delivery-limit":
			n, ok := asInt(v)
			if !ok {
				return errorf(KindPreconditionFailed, "invalid arg '%s': expected an integer, got %T", k, v)
			}
			if n < 0 || (k == "x-expires" && n == 0) {
				return errorf(KindPreconditionFailed, "invalid arg '%s': %d is out of range", k, n)
			}
		case "x-overflow":
			s, _ := v.(string)
			switch s {
			case "drop-head", "reject-publish", "reject-publish-dlx":
			default:
				return errorf(KindPreconditionFailed, "invalid arg 'x-overflow': '%v' is not drop-head, reject-publish or reject-publish-dlx", v)
			}
		case "x-single-active-consumer":
			if _, ok := v.(bool); !ok {
				return errorf(KindPreconditionFailed, "invalid arg 'x-single-active-consumer': expected a boolean, got %T", v)
			}
		case "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-queue-mode": // x-queue-type: checkQueueType
			if _, ok := v.(string); !ok {
				return errorf(KindPreconditionFailed, "invalid arg '%s': expected a string, got %T", k, v)
			}
		}
	}
	return checkLocatorArgs(args)
}
