package httpx

import (
	"context"
	"net/http"

	"github.com/warrenmq/warren/mapping"
)

// PublishAndWait publishes m on ch and waits for the core's final outcome:
// stored (the answer can say so) or refused. A refusal is returned as the
// core's error, which ErrorStatus maps; flow control holds the caller while
// a queue it filled drains. req is the client's request, srv the server's
// life.
func PublishAndWait(ch *mapping.Channel, m *mapping.Message, req, srv context.Context) (mapping.Outcome, error) {
	done := make(chan mapping.Outcome, 1)
	out := ch.Publish(m, func(o mapping.Outcome) { done <- o })
	if err := out.Err(); err != nil {
		return out, err
	}
	ch.WaitFlow(req.Done())
	select {
	case o := <-done:
		return o, o.Err()
	case <-req.Done():
		return out, APIError(http.StatusServiceUnavailable, "the client went away before the message was stored")
	case <-srv.Done():
		return out, APIError(http.StatusServiceUnavailable, "warren is shutting down")
	}
}
