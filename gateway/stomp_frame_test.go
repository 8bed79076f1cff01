package gateway

import (
	"bytes"
	"errors"
	"testing"
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
