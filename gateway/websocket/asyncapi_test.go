package websocket

// The AsyncAPI document (openapi/asyncapi.json, served at /asyncapi.json)
// against the code of the JSON WebSocket protocol: the client ops it
// describes are exactly the cases of jsonSession.handle's switch on
// req.Op, the server frames exactly the ops the ws_*.go files write, the
// field names those of wsRequest and wsProperties; and a live session
// knows every op it lists.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/warrenmq/warren/gateway/internal/httpx"
	"github.com/warrenmq/warren/gateway/internal/wsconn"
	"github.com/warrenmq/warren/mapping"
	"github.com/warrenmq/warren/mapping/msgcodec"
	"github.com/warrenmq/warren/openapi"
)

// asyncDoc is the parsed AsyncAPI document with a resolver for local
// $refs.
type asyncDoc struct {
	t    *testing.T
	root map[string]any
}

func loadAsyncAPI(t *testing.T) *asyncDoc {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(openapi.AsyncAPI(), &root); err != nil {
		t.Fatalf("openapi/asyncapi.json: %v", err)
	}
	if v, _ := root["asyncapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("asyncapi version %q, want 3.x", v)
	}
	return &asyncDoc{t: t, root: root}
}

// resolve follows $ref (repeatedly) to the object it names.
func (d *asyncDoc) resolve(v any) map[string]any {
	d.t.Helper()
	m, _ := v.(map[string]any)
	for m != nil {
		r, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		if !strings.HasPrefix(r, "#/") {
			d.t.Fatalf("non-local $ref %q", r)
		}
		var cur any = d.root
		for _, part := range strings.Split(r[2:], "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cur = cur.(map[string]any)[part]
		}
		if cur == nil {
			d.t.Fatalf("dangling $ref %q", r)
		}
		m, _ = cur.(map[string]any)
	}
	d.t.Fatalf("not an object: %v", v)
	return nil
}

// payloads returns, per action (send, receive), the payload schemas of
// the operations' messages by op name.
func (d *asyncDoc) payloads() map[string]map[string][]map[string]any {
	out := map[string]map[string][]map[string]any{"send": {}, "receive": {}}
	ops, _ := d.root["operations"].(map[string]any)
	if len(ops) == 0 {
		d.t.Fatal("no operations")
	}
	for name, o := range ops {
		op := d.resolve(o)
		action, _ := op["action"].(string)
		if out[action] == nil {
			d.t.Fatalf("operation %s: action %q", name, action)
		}
		msgs, _ := op["messages"].([]any)
		if len(msgs) == 0 {
			d.t.Fatalf("operation %s has no messages", name)
		}
		for _, m := range msgs {
			p := d.resolve(d.resolve(m)["payload"])
			props, _ := p["properties"].(map[string]any)
			c, _ := d.resolve(props["op"])["const"].(string)
			if c == "" {
				d.t.Fatalf("operation %s: a message without an op const: %v", name, p)
			}
			out[action][c] = append(out[action][c], p)
		}
	}
	return out
}

// codeClientOps are the string cases of the switch on req.Op in
// jsonSession.handle (ws_session.go), "" (the missing op) left out.
func codeClientOps(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "ws_session.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "handle" || fn.Recv == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			sel, ok := sw.Tag.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Op" {
				return true
			}
			for _, st := range sw.Body.List {
				for _, e := range st.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, _ := strconv.Unquote(lit.Value); s != "" {
							ops = append(ops, s)
						}
					}
				}
			}
			return false
		})
	}
	if len(ops) == 0 {
		t.Fatal("no switch on req.Op found in jsonSession.handle (ws_session.go): update this test to where the ops are dispatched")
	}
	return ops
}

// opLiteral is the start of a hand-written frame encoder's output,
// {"op":"name" (error messages that quote a frame do not start so).
var opLiteral = regexp.MustCompile(`^\{"op":"([a-z_]+)"`)

// codeServerOps are the ops of the frames the ws_*.go files write:
// wsFrame("name", ...) calls and {"op":"name" literals.
func codeServerOps(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("ws_*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "wsFrame" && len(x.Args) > 0 {
					if lit, ok := x.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						seen[s] = true
					}
				}
			case *ast.BasicLit:
				if x.Kind == token.STRING {
					s, _ := strconv.Unquote(x.Value)
					if m := opLiteral.FindStringSubmatch(s); m != nil {
						seen[m[1]] = true
					}
				}
			}
			return true
		})
	}
	var ops []string
	for s := range seen {
		ops = append(ops, s)
	}
	return ops
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestAsyncAPIOpsMatchCode(t *testing.T) {
	doc := loadAsyncAPI(t)
	p := doc.payloads()
	for _, tc := range []struct {
		what string
		doc  []string
		code []string
	}{
		{"client ops (receive operations vs jsonSession.handle)", sortedKeys(p["receive"]), codeClientOps(t)},
		{"server frames (send operations vs frames written in ws_*.go)", sortedKeys(p["send"]), codeServerOps(t)},
	} {
		code := slices.Sorted(slices.Values(tc.code))
		code = slices.Compact(code)
		if !slices.Equal(tc.doc, code) {
			t.Errorf("%s differ:\n  asyncapi.json: %v\n  code:          %v", tc.what, tc.doc, code)
		}
	}
}

// jsonTags are the JSON field names of a struct type.
func jsonTags(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	for f := range typ.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// TestAsyncAPIFields: every field a client message describes is one the
// server reads (wsRequest), and the Properties schema has exactly the
// fields of wsProperties.
func TestAsyncAPIFields(t *testing.T) {
	doc := loadAsyncAPI(t)
	req := jsonTags(reflect.TypeFor[wsRequest]())
	for op, schemas := range doc.payloads()["receive"] {
		for _, s := range schemas {
			props, _ := s["properties"].(map[string]any)
			for field := range props {
				if !req[field] {
					t.Errorf("client op %s: field %q is not read by the server (no such wsRequest field)", op, field)
				}
			}
			req, _ := s["required"].([]any)
			for _, r := range req {
				if _, ok := props[r.(string)]; !ok {
					t.Errorf("client op %s: required %q is not among its properties", op, r)
				}
			}
		}
	}
	schemas := doc.root["components"].(map[string]any)["schemas"].(map[string]any)
	props := doc.resolve(schemas["Properties"])["properties"].(map[string]any)
	want := sortedKeys(jsonTags(reflect.TypeFor[msgcodec.Props]()))
	if got := sortedKeys(props); !slices.Equal(got, want) {
		t.Errorf("Properties schema fields %v, msgcodec.Props has %v", got, want)
	}
}

// TestAsyncAPILive: a live /v1/ws session answers every client op of the
// document with something other than "unknown op" (gateway's
// TestAsyncAPIServed checks that /asyncapi.json serves the document).
func TestAsyncAPILive(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mapping.Open(mapping.Config{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := wsconn.NewState(wsconn.Config{}, wsconn.Deps{Router: r, Logger: log, Authenticate: func(c echo.Context) (*mapping.UserInfo, error) {
		user, pass, _ := c.Request().BasicAuth()
		return r.Authenticate(user, pass, httpx.RemoteAddr(c))
	}})
	e := echo.New()
	New(r, func() *wsconn.State { return st }).Routes(e)
	hs := httptest.NewServer(e)
	defer hs.Close()

	hdr := http.Header{}
	hdr.Set("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=") // guest:guest, from loopback
	d := websocket.Dialer{Subprotocols: []string{wsSubprotocol}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/v1/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() map[string]any {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if w := read(); w["op"] != "welcome" {
		t.Fatalf("first frame %v", w)
	}
	// answer sends {op, id} and returns the frame that answers it.
	answer := func(op string, id int) map[string]any {
		t.Helper()
		if err := ws.WriteJSON(map[string]any{"op": op, "id": id}); err != nil {
			t.Fatal(err)
		}
		for {
			m := read()
			if n, ok := m["id"].(float64); ok && int(n) == id {
				return m
			}
		}
	}
	unknown := func(m map[string]any) bool {
		msg, _ := m["message"].(string)
		return m["op"] == "error" && strings.HasPrefix(msg, "unknown op")
	}
	ops := sortedKeys(loadAsyncAPI(t).payloads()["receive"])
	for i, op := range ops {
		if m := answer(op, i+1); unknown(m) {
			t.Errorf("op %s is in asyncapi.json but the server says %v", op, m)
		}
	}
	if m := answer("no_such_op", 1000); !unknown(m) {
		t.Fatalf("an unknown op was answered with %v, want an unknown op error (the check above would prove nothing)", m)
	}
}
