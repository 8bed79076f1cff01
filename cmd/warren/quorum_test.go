package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// apiQueue is GET /api/queues/%2F/{name} on the node at base.
func apiQueue(t *testing.T, base, name string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/queues/%2F/"+name, nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/queues/%%2F/%s: %s %s", name, resp.Status, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func names(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestClusterQuorumQueueReplicated: on a three-node cluster, a quorum
// queue declared through n1 is a replicated queue led by n1 (its home):
// /api/queues shows n1 as its node and leader, all three nodes as
// members and, once they have caught up, online; confirmed messages are
// consumed back from n1. x-quorum-initial-group-size 2 gives two members.
func TestClusterQuorumQueueReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a three-node cluster")
	}
	insts := startInProcessCluster(t, loopbackClusterConfigs(t, 3), slog.New(slog.NewTextHandler(io.Discard, nil)))
	url, base := amqpURL(insts[0]), "http://"+insts[0].HTTPAddr()
	conn, ch := dialURL(t, url)
	defer conn.Close()
	if _, err := ch.QueueDeclare("quorum-q", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("quorum-q2", true, false, false, false, amqp.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(2)}); err != nil {
		t.Fatal(err)
	}
	if err := (seqFill{url: url, queue: "quorum-q", mode: amqp.Persistent, size: 100, publishers: 1, window: 16}).run(20); err != nil {
		t.Fatal(err)
	}
	var q map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		q = apiQueue(t, base, "quorum-q")
		if len(names(q["online"])) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if q["type"] != "quorum" || q["node"] != "n1" || q["leader"] != "n1" ||
		!slices.Equal(names(q["members"]), []string{"n1", "n2", "n3"}) || !slices.Equal(names(q["online"]), []string{"n1", "n2", "n3"}) {
		t.Fatalf("quorum-q in /api/queues: type %v node %v leader %v members %v online %v; want quorum, n1, n1, [n1 n2 n3] twice",
			q["type"], q["node"], q["leader"], q["members"], q["online"])
	}
	// Two of three nodes hold it; the declaring node leads it when it is
	// one of them (JetStream picks the members).
	q2 := apiQueue(t, base, "quorum-q2")
	m2 := names(q2["members"])
	if len(m2) != 2 || !slices.Contains(m2, q2["leader"].(string)) || q2["node"] != q2["leader"] || slices.Contains(m2, "n1") && q2["leader"] != "n1" {
		t.Fatalf("quorum-q2 (group size 2): node %v leader %v members %v; want two members, one of them leading (n1 if it is one)", q2["node"], q2["leader"], q2["members"])
	}
	if got := getAll(t, url, "quorum-q"); len(got) != 20 {
		t.Fatalf("consumed %d messages from quorum-q, want the 20 confirmed", len(got))
	}
}
