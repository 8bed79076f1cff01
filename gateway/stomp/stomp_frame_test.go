package stomp

import (
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
)

func TestParseStompFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		escapes bool
		cmd     string
		headers [][2]string
		body    string
		rest    int
		err     bool
	}{
		{name: "heart-beats then SEND", in: "\n\r\nSEND\ndestination:/queue/a\n\nhi\x00\n", escapes: true, cmd: "SEND", headers: [][2]string{{"destination", "/queue/a"}}, body: "hi", rest: 1},
		{name: "escapes", in: "SEND\nk\\cx:a\\nb\\\\c\\r\n\n\x00", escapes: true, cmd: "SEND", headers: [][2]string{{"k:x", "a\nb\\c\r"}}},
		{name: "no escapes in CONNECT", in: "CONNECT\npasscode:a\\cb\n\n\x00", escapes: true, cmd: "CONNECT", headers: [][2]string{{"passcode", `a\cb`}}},
		{name: "STOMP 1.0 keeps backslashes", in: "SEND\nk:a\\b\n\n\x00", escapes: false, cmd: "SEND", headers: [][2]string{{"k", `a\b`}}},
		{name: "content-length with NUL in body", in: "SEND\ncontent-length:3\n\na\x00b\x00", escapes: true, cmd: "SEND", headers: [][2]string{{"content-length", "3"}}, body: "a\x00b"},
		{name: "CRLF", in: "SEND\r\na:b\r\n\r\nx\x00", escapes: true, cmd: "SEND", headers: [][2]string{{"a", "b"}}, body: "x"},
		{name: "repeated header", in: "SEND\na:1\na:2\n\n\x00", escapes: true, cmd: "SEND", headers: [][2]string{{"a", "1"}, {"a", "2"}}},
		{name: "bad escape", in: "SEND\na:\\t\n\n\x00", escapes: true, err: true},
		{name: "no colon", in: "SEND\nab\n\n\x00", escapes: true, err: true},
		{name: "content-length without NUL", in: "SEND\ncontent-length:1\n\nab\x00", escapes: true, err: true},
		{name: "too large", in: "SEND\ncontent-length:99999\n\n", escapes: true, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, n, err := parseStompFrame([]byte(tc.in), tc.escapes, 1024)
			if tc.err {
				if err == nil || errors.Is(err, errStompIncomplete) {
					t.Fatalf("want an error, got %v %v", f, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.command != tc.cmd || string(f.body) != tc.body || len(tc.in)-n != tc.rest {
				t.Fatalf("got %q %q rest %d", f.command, f.body, len(tc.in)-n)
			}
			if len(f.headers) != len(tc.headers) {
				t.Fatalf("headers %q", f.headers)
			}
			for i := range f.headers {
				if f.headers[i] != tc.headers[i] {
					t.Fatalf("headers %q, want %q", f.headers, tc.headers)
				}
			}
			if f.get("a") != "" && f.get("a") != "1" && tc.name == "repeated header" {
				t.Fatal("first repeated header must win")
			}
		})
	}
}

func TestStompRoundTrip(t *testing.T) {
	f := &stompFrame{command: "MESSAGE", body: []byte("a\x00b")}
	f.set("k:1", "v\nw\\")
	b := appendStompFrame(nil, f, true)
	g, n, err := parseStompFrame(b, true, 1024)
	if err != nil || n != len(b) {
		t.Fatalf("%v %d/%d", err, n, len(b))
	}
	if g.get("k:1") != "v\nw\\" || !bytes.Equal(g.body, f.body) || g.get("content-length") != "3" {
		t.Fatalf("round trip: %+v", g)
	}
}

// FuzzParseStompFrame feeds each input whole and in two halves (as frames
// split across WebSocket messages arrive): the parser must not panic,
// must agree with itself, and must never use more bytes than it was given.
func FuzzParseStompFrame(f *testing.F) {
	for _, s := range []string{
		"SEND\ndestination:/queue/a\n\nhi\x00",
		"CONNECT\naccept-version:1.2\nlogin:guest\npasscode:guest\n\n\x00",
		"SEND\ncontent-length:3\n\na\x00b\x00",
		"\n\nACK\nid:T_s@@1\n\n\x00",
		"SEND\na:\\c\\n\n\n\x00",
	} {
		f.Add([]byte(s), 5)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		whole, n, err := parseStompFrame(data, true, 4096)
		if n > len(data) || n < 0 {
			t.Fatalf("used %d of %d bytes", n, len(data))
		}
		if cut < 0 || cut > len(data) {
			return
		}
		// The first half alone is either a complete frame (the same one) or
		// incomplete or an error; with the rest appended, the same result.
		part, pn, perr := parseStompFrame(data[:cut], true, 4096)
		if perr == nil && err == nil && (part.command != whole.command || pn != n) {
			t.Fatalf("prefix parsed differently: %q/%d vs %q/%d", part.command, pn, whole.command, n)
		}
		if err == nil && whole != nil {
			again := appendStompFrame(nil, whole, true)
			if g, _, err := parseStompFrame(again, true, 1<<20); err != nil || g.command != whole.command || !bytes.Equal(g.body, whole.body) {
				t.Fatalf("re-encoded frame does not parse back: %v", err)
			}
		}
	})
}

// TestStompSubscriptionQueue: the queue a SUBSCRIBE to /topic/ or
// /exchange/ declares, from its durable/persistent, auto-delete,
// x-queue-name and queue-argument headers.
func TestStompSubscriptionQueue(t *testing.T) {
	frame := func(h ...string) *stompFrame {
		f := &stompFrame{command: "SUBSCRIBE"}
		for i := 0; i+1 < len(h); i += 2 {
			f.set(h[i], h[i+1])
		}
		return f
	}
	derived := durableSubName("/topic/a.b", "7")
	if !strings.HasPrefix(derived, "stomp-subscription-") || len(derived) != len("stomp-subscription-")+22 {
		t.Fatalf("derived name %q", derived)
	}
	if derived != durableSubName("/topic/a.b", "7") || derived == durableSubName("/topic/a.b", "8") || derived == durableSubName("/topic/a.c", "7") {
		t.Fatal("derived names must be stable and differ by destination and id")
	}
	for _, tc := range []struct {
		name string
		f    *stompFrame
		want mapping.QueueSpec
		err  string
	}{
		{"default: exclusive, server-named", frame("id", "7"), mapping.QueueSpec{Exclusive: true, AutoDelete: true}, ""},
		{"x-queue-name, not durable", frame("id", "7", "x-queue-name", "mine"), mapping.QueueSpec{Name: "mine", Exclusive: true, AutoDelete: true}, ""},
		{"durable", frame("id", "7", "durable", "true", "auto-delete", "false"), mapping.QueueSpec{Name: derived, Durable: true}, ""},
		{"persistent is durable's old name", frame("id", "7", "persistent", "True", "auto-delete", "false"), mapping.QueueSpec{Name: derived, Durable: true}, ""},
		{"durable is auto-delete by default", frame("id", "7", "durable", "true"), mapping.QueueSpec{Name: derived, Durable: true, AutoDelete: true}, ""},
		{"durable with x-queue-name", frame("durable", "true", "auto-delete", "false", "x-queue-name", "q1"), mapping.QueueSpec{Name: "q1", Durable: true}, ""},
		{"durable without id", frame("durable", "true"), mapping.QueueSpec{}, "needs an id"},
		{"bad boolean", frame("id", "7", "durable", "yes"), mapping.QueueSpec{}, "durable must be true or false"},
		{"bad auto-delete", frame("id", "7", "durable", "true", "auto-delete", "1"), mapping.QueueSpec{}, "auto-delete must be true or false"},
	} {
		got, err := subQueue(tc.f, "/topic/a.b", nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
	}

	args, err := stompQueueArgs(frame("x-message-ttl", "60000", "x-expires", " 120000 ", "x-max-length", "10", "x-max-length-bytes", "1048576",
		"x-max-priority", "5", "x-dead-letter-exchange", "dlx", "x-dead-letter-routing-key", "dead", "x-queue-type", "classic", "x-other", "kept out"))
	want := mapping.Table{"x-message-ttl": int64(60000), "x-expires": int64(120000), "x-max-length": int64(10), "x-max-length-bytes": int64(1 << 20),
		"x-max-priority": int64(5), "x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead", "x-queue-type": "classic"}
	if err != nil || !reflect.DeepEqual(args, want) {
		t.Fatalf("args %#v %v", args, err)
	}
	// the type is the core's to check (mapping/qtype.go): passed on as sent
	if args, err := stompQueueArgs(frame("x-queue-type", " quorum ")); err != nil || !reflect.DeepEqual(args, mapping.Table{"x-queue-type": "quorum"}) {
		t.Fatalf("x-queue-type: %#v %v", args, err)
	}
	if args, err := stompQueueArgs(frame("id", "1")); args != nil || err != nil {
		t.Fatalf("no argument headers: %v %v", args, err)
	}
	for h, v := range map[string]string{"x-max-length": "ten", "x-message-ttl": "-1", "x-max-priority": "1.5"} {
		_, err := stompQueueArgs(frame(h, v))
		code, _, msg := wsconn.ErrorCode(err)
		if err == nil || code != http.StatusBadRequest || !strings.Contains(msg, h) && !strings.Contains(msg, v) {
			t.Errorf("%s:%s: %d %v", h, v, code, err)
		}
	}
}
