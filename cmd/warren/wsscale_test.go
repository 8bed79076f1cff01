package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestWSScale is the fan-out benchmark of docs/websocket.md, not a timed
// test:
//
//	WARREN_WS_SCALE=10000 go test -run 'TestWSScale$' -v ./cmd/warren
//
// opens that many subscribers on one topic exchange (clients in a child
// process, so that the server's memory can be measured here), publishes
// and reports delivery rate, fan-out latency, server and client CPU per
// delivery and memory per idle connection.
//
// WARREN_WS_SCALE_PROTO=stomp subscribes over STOMP at /ws instead of
// Warren's JSON protocol. To run the same clients against another broker
// (RabbitMQ's Web-STOMP, as the baseline of docs/websocket.md), set
// WARREN_WS_SCALE_WS_URL (e.g. ws://127.0.0.1:15674/ws),
// WARREN_WS_SCALE_AMQP_URL (where the messages are published) and
// WARREN_WS_SCALE_SERVER_PID (whose CPU time is reported); memory is then
// not measured. WARREN_WS_SCALE_CPUPROFILE=<file> writes the server's CPU
// profile of the paced fan-outs.
func TestWSScale(t *testing.T) {
	if os.Getenv("WARREN_WS_SCALE_CHILD") != "" {
		wsScaleChild(t)
		return
	}
	n, _ := strconv.Atoi(os.Getenv("WARREN_WS_SCALE"))
	if n <= 0 {
		t.Skip("set WARREN_WS_SCALE=<subscribers> to run the WebSocket fan-out benchmark")
	}
	wsRaiseNoFile(t, uint64(2*n+1024))
	msgs := 20
	if v, _ := strconv.Atoi(os.Getenv("WARREN_WS_SCALE_MSGS")); v > 0 {
		msgs = v
	}
	proto := os.Getenv("WARREN_WS_SCALE_PROTO")
	if proto == "" {
		proto = "json"
	}
	if proto != "json" && proto != "stomp" {
		t.Fatalf("WARREN_WS_SCALE_PROTO=%s: want json or stomp", proto)
	}

	wsURL, amqpAddr := os.Getenv("WARREN_WS_SCALE_WS_URL"), os.Getenv("WARREN_WS_SCALE_AMQP_URL")
	var inst *instance
	var cpu func() time.Duration
	if wsURL == "" {
		inst = startWarren(t, "")
		wsURL = "ws://" + inst.HTTPAddr() + "/v1/ws"
		if proto == "stomp" {
			wsURL = "ws://" + inst.HTTPAddr() + "/ws"
		}
		amqpAddr = amqpURL(inst)
		cpu = wsCPUTime
	} else {
		pid, err := strconv.Atoi(os.Getenv("WARREN_WS_SCALE_SERVER_PID"))
		if err != nil || amqpAddr == "" {
			t.Fatal("with WARREN_WS_SCALE_WS_URL, set WARREN_WS_SCALE_AMQP_URL and WARREN_WS_SCALE_SERVER_PID too")
		}
		cpu = func() time.Duration { return procCPUTime(t, pid) }
	}

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	before := heap()
	cmd := wsScaleCommand(wsURL, proto, n, msgs)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	dec := json.NewDecoder(out)
	var hello struct{ Connected int }
	if err := dec.Decode(&hello); err != nil {
		t.Fatalf("child: %v", err)
	}
	if hello.Connected == 0 {
		t.Fatal("no subscriber connected")
	}
	t.Logf("%s at %s: %d subscribers connected and subscribed", proto, wsURL, hello.Connected)
	if inst != nil {
		eventually(t, time.Minute, "subscriptions", func() bool {
			return len(inst.router.Consumers()) >= hello.Connected
		})
		time.Sleep(time.Second)
		perConn := float64(heap()-before) / float64(hello.Connected)
		t.Logf("%d idle sessions (1 exchange subscription each): %.1f KiB per connection (heap+stacks)", hello.Connected, perConn/1024)
	} else {
		time.Sleep(time.Second)
	}

	conn, err := amqp.Dial(amqpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	publish := func(kind string) {
		body := kind + strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := ch.Publish("amq.topic", "scale.tick", false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// Paced messages measure fan-out latency (each fan-out finishes
	// before the next message); a burst measures the delivery rate.
	pace := max(250*time.Millisecond, time.Duration(n)*150*time.Microsecond)
	if path := os.Getenv("WARREN_WS_SCALE_CPUPROFILE"); path != "" && inst != nil {
		// The server's profile of the paced fan-outs alone.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpu()
	for range msgs {
		publish("p")
		time.Sleep(pace)
	}
	serverCPU := cpu() - cpu0
	pprof.StopCPUProfile()
	for range msgs {
		publish("b")
	}
	var res struct {
		Received       int
		BurstDelivered int
		BurstSeconds   float64
		P50, P99       float64
		MaxFanout      float64
		FanoutP99      float64
		ClientMicros   float64
	}
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("child result: %v", err)
	}
	if res.Received != 2*msgs*hello.Connected {
		t.Errorf("received %d deliveries, want %d", res.Received, 2*msgs*hello.Connected)
	}
	t.Logf("paced: %d messages to %d subscribers, %d deliveries: per-delivery latency p50 %.1f ms, p99 %.1f ms; fan-out (last subscriber) p99 %.1f ms, max %.1f ms",
		msgs, hello.Connected, res.Received-res.BurstDelivered, res.P50, res.P99, res.FanoutP99, res.MaxFanout)
	t.Logf("server CPU while paced: %.1f µs per delivery (%.0f ms per fan-out of one message to %d subscribers); client process CPU %.1f µs per delivery",
		float64(serverCPU.Microseconds())/float64(msgs*hello.Connected), float64(serverCPU.Milliseconds())/float64(msgs), hello.Connected, res.ClientMicros)
	t.Logf("burst: %d messages to %d subscribers: %d deliveries in %.2f s = %.0f deliveries/s",
		msgs, hello.Connected, res.BurstDelivered, res.BurstSeconds, float64(res.BurstDelivered)/res.BurstSeconds)
}

// wsCPUTime is the CPU time (user and system) this process has used.
func wsCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPUTime is the CPU time (user and system) of another process, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPUTime(t testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func wsRaiseNoFile(t testing.TB, want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("setrlimit: %v", err)
		}
	}
}

// wsScaleSubscribe opens one subscriber and waits until its subscription
// is active (the JSON protocol's ok, STOMP's RECEIPT).
func wsScaleSubscribe(d *websocket.Dialer, url, proto string) (*websocket.Conn, error) {
	ws, _, err := d.Dial(url, guestHeader())
	if err != nil {
		return nil, err
	}
	// gorilla's default ping handler gives the pong one second, which an
	// overloaded client process can miss; the test is about the server.
	ws.SetPingHandler(func(data string) error {
		ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(30*time.Second))
		return nil
	})
	ws.SetReadDeadline(time.Now().Add(time.Minute))
	defer ws.SetReadDeadline(time.Time{})
	expect := func(prefix string) error {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(data, []byte(prefix)) {
			return fmt.Errorf("got %q, want %s...", data, prefix)
		}
		return nil
	}
	if proto == "stomp" {
		ws.WriteMessage(websocket.TextMessage, []byte("CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\x00"))
		if err := expect("CONNECTED"); err != nil {
			ws.Close()
			return nil, err
		}
		ws.WriteMessage(websocket.TextMessage, []byte("SUBSCRIBE\nid:0\ndestination:/exchange/amq.topic/scale.*\nack:auto\nreceipt:sub\n\n\x00"))
		if err := expect("RECEIPT"); err != nil {
			ws.Close()
			return nil, err
		}
		return ws, nil
	}
	if err := expect(`{"op":"welcome"`); err != nil {
		ws.Close()
		return nil, err
	}
	ws.WriteJSON(map[string]any{"op": "subscribe", "exchange": "amq.topic", "binding_key": "scale.*", "id": 1})
	if err := expect(`{"op":"ok"`); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// wsScalePayload finds the payload of a delivery frame: "p" or "b" (paced
// or burst) and the publish time in Unix ns. ok is false for other frames.
func wsScalePayload(proto string, data []byte) (payload []byte, ok bool) {
	if proto == "stomp" {
		if !bytes.HasPrefix(data, []byte("MESSAGE\n")) {
			return nil, false
		}
		_, body, found := bytes.Cut(data, []byte("\n\n"))
		return bytes.TrimRight(body, "\x00\n"), found && len(body) > 1
	}
	// Cheap parsing: the client must not be the bottleneck.
	if !bytes.HasPrefix(data, []byte(`{"op":"message"`)) {
		return nil, false
	}
	_, rest, _ := bytes.Cut(data, []byte(`"payload":"`))
	num, _, _ := bytes.Cut(rest, []byte(`"`))
	return num, len(num) > 1
}

// wsScaleChild is the client side of TestWSScale: it connects n
// subscribers, says so, receives msgs messages on each and reports
// latencies (the body is the publish time in Unix ns).
func wsScaleChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WARREN_WS_SCALE"))
	msgs, _ := strconv.Atoi(os.Getenv("WARREN_WS_SCALE_MSGS"))
	url, proto := os.Getenv("WARREN_WS_SCALE_URL"), os.Getenv("WARREN_WS_SCALE_PROTO")
	wsRaiseNoFile(t, uint64(2*n+1024))
	type rx struct {
		sent, got int64
		burst     bool
	}
	results := make(chan rx, 2*n*msgs+16)
	var wg sync.WaitGroup
	sub := "warren.v1"
	if proto == "stomp" {
		sub = "v12.stomp"
	}
	d := websocket.Dialer{Subprotocols: []string{sub}, ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: time.Minute}
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		var ws *websocket.Conn
		var err error
		for try := 0; try < 5; try++ {
			if ws, err = wsScaleSubscribe(&d, url, proto); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "subscriber %d: %v\n", i, err)
			break
		}
		conns = append(conns, ws)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := 0
			for got < 2*msgs {
				// Long: the first read waits while the other subscribers
				// connect, which takes minutes against some brokers.
				ws.SetReadDeadline(time.Now().Add(15 * time.Minute))
				_, data, err := ws.ReadMessage()
				if err != nil {
					fmt.Fprintf(os.Stderr, "subscriber after %d messages: %v\n", got, err)
					return
				}
				now := time.Now().UnixNano()
				p, ok := wsScalePayload(proto, data)
				if !ok {
					continue
				}
				sent, _ := strconv.ParseInt(string(p[1:]), 10, 64)
				results <- rx{sent, now, p[0] == 'b'}
				got++
			}
		}()
	}
	json.NewEncoder(os.Stdout).Encode(map[string]int{"Connected": len(conns)})
	cpu0 := wsCPUTime()
	wg.Wait()
	clientCPU := wsCPUTime() - cpu0
	close(results)
	var lat []float64
	fan := map[int64]int64{}
	var first, last int64
	burst := 0
	for r := range results {
		if r.burst {
			burst++
			if first == 0 || r.sent < first {
				first = r.sent
			}
			last = max(last, r.got)
			continue
		}
		lat = append(lat, float64(r.got-r.sent)/1e6)
		if r.got > fan[r.sent] {
			fan[r.sent] = r.got
		}
	}
	sort.Float64s(lat)
	var fl []float64
	for sent, got := range fan {
		fl = append(fl, float64(got-sent)/1e6)
	}
	sort.Float64s(fl)
	pct := func(v []float64, p float64) float64 {
		if len(v) == 0 {
			return 0
		}
		return v[min(len(v)-1, int(p*float64(len(v))))]
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"Received": len(lat) + burst, "BurstDelivered": burst, "BurstSeconds": float64(last-first) / 1e9,
		"P50": pct(lat, 0.5), "P99": pct(lat, 0.99), "FanoutP99": pct(fl, 0.99), "MaxFanout": pct(fl, 1),
		"ClientMicros": float64(clientCPU.Microseconds()) / float64(max(1, len(lat)+burst)),
	})
	for _, c := range conns {
		c.Close()
	}
}

// wsScaleCommand re-runs this test binary as the benchmark's client.
func wsScaleCommand(url, proto string, n, msgs int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestWSScale$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(),
		"WARREN_WS_SCALE_CHILD=1",
		"WARREN_WS_SCALE="+strconv.Itoa(n),
		"WARREN_WS_SCALE_MSGS="+strconv.Itoa(msgs),
		"WARREN_WS_SCALE_URL="+url,
		"WARREN_WS_SCALE_PROTO="+proto,
		"GOMAXPROCS=1", // leave the other core to the server
	)
	return cmd
}
