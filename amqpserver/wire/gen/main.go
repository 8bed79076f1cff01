//go:build ignore

// Command gen writes methods_gen.go from the AMQP 0-9-1 XML specification:
// one struct per method with its wire encoding, the method dispatch table,
// the class ids and the spec's constants (frame types, reply codes and which
// reply codes are hard errors).
//
// By default it reads the spec that ships in the github.com/rabbitmq/amqp091-go
// module (found with `go list -m`); -spec names another file.
package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type amqpSpec struct {
	Constants []constant `xml:"constant"`
	Domains   []domain   `xml:"domain"`
	Classes   []class    `xml:"class"`
}

type constant struct {
	Name  string `xml:"name,attr"`
	Value int    `xml:"value,attr"`
	Class string `xml:"class,attr"`
}

type domain struct {
	Name string `xml:"name,attr"`
	Type string `xml:"type,attr"`
}

type class struct {
	Name    string   `xml:"name,attr"`
	Index   uint16   `xml:"index,attr"`
	Methods []method `xml:"method"`
}

type method struct {
	Name        string  `xml:"name,attr"`
	Index       uint16  `xml:"index,attr"`
	Synchronous int     `xml:"synchronous,attr"`
	Content     int     `xml:"content,attr"`
	Fields      []field `xml:"field"`
}

type field struct {
	Name     string `xml:"name,attr"`
	Domain   string `xml:"domain,attr"`
	Type     string `xml:"type,attr"`
	Reserved int    `xml:"reserved,attr"`
}

// goType, appendFn and readFn per AMQP primitive type. Bits are handled
// separately because consecutive bits share an octet.
var primitives = map[string]struct{ goType, appendFn, readFn string }{
	"octet":     {"uint8", "dst = append(dst, m.%s)", "m.%s = d.u8()"},
	"short":     {"uint16", "dst = binary.BigEndian.AppendUint16(dst, m.%s)", "m.%s = d.u16()"},
	"long":      {"uint32", "dst = binary.BigEndian.AppendUint32(dst, m.%s)", "m.%s = d.u32()"},
	"longlong":  {"uint64", "dst = binary.BigEndian.AppendUint64(dst, m.%s)", "m.%s = d.u64()"},
	"timestamp": {"time.Time", "dst = binary.BigEndian.AppendUint64(dst, uint64(m.%s.Unix()))", "m.%s = d.timestamp()"},
	"shortstr":  {"string", "if dst, err = appendShortstr(dst, m.%s); err != nil {\nreturn dst, err\n}", "m.%s = d.shortstr()"},
	"longstr":   {"string", "if dst, err = appendLongstr(dst, m.%s); err != nil {\nreturn dst, err\n}", "m.%s = d.longstr()"},
	"table":     {"mapping.Table", "if dst, err = appendTable(dst, m.%s); err != nil {\nreturn dst, err\n}", "m.%s = d.table()"},
}

// renamed avoids fields clashing with the Method interface: connection.close
// and channel.close carry the class and method that caused the close.
var renamed = map[string]string{
	"ClassID":  "FailingClassID",
	"MethodID": "FailingMethodID",
}

func main() {
	specPath := flag.String("spec", "", "AMQP 0-9-1 XML spec (default: the one in the amqp091-go module)")
	out := flag.String("o", "methods_gen.go", "output file")
	flag.Parse()
	if *specPath == "" {
		dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/rabbitmq/amqp091-go").Output()
		if err != nil {
			log.Fatalf("locating amqp091-go (pass -spec): %v", err)
		}
		*specPath = filepath.Join(strings.TrimSpace(string(dir)), "spec", "amqp0-9-1.stripped.extended.xml")
	}
	raw, err := os.ReadFile(*specPath)
	if err != nil {
		log.Fatal(err)
	}
	var s amqpSpec
	if err := xml.Unmarshal(raw, &s); err != nil {
		log.Fatalf("parsing %s: %v", *specPath, err)
	}
	src, err := generate(&s)
	if err != nil {
		log.Fatal(err)
	}
	formatted, err := format.Source(src)
	if err != nil {
		os.WriteFile(*out+".broken", src, 0o644)
		log.Fatalf("gofmt of generated code: %v (unformatted output in %s.broken)", err, *out)
	}
	if err := os.WriteFile(*out, formatted, 0o644); err != nil {
		log.Fatal(err)
	}
}

// camel turns "start-ok" into "StartOk" and "consumer-tag" into
// "ConsumerTag"; "id" becomes "ID".
func camel(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			continue
		}
		if part == "id" {
			b.WriteString("ID")
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func generate(s *amqpSpec) ([]byte, error) {
	domains := map[string]string{}
	for _, d := range s.Domains {
		domains[d.Name] = d.Type
	}
	resolve := func(f field) (string, error) {
		t := f.Type
		if t == "" {
			t = f.Domain
		}
		for range 10 {
			if _, ok := primitives[t]; ok || t == "bit" {
				return t, nil
			}
			next, ok := domains[t]
			if !ok || next == t {
				break
			}
			t = next
		}
		return "", fmt.Errorf("field %q: cannot resolve domain %q to a primitive type", f.Name, t)
	}

	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	usesTime := false

	// Constants.
	p("// Constants of the specification: frame types and sizes, and reply codes.")
	p("const (")
	for _, c := range s.Constants {
		comment := ""
		if c.Class != "" {
			comment = " // " + c.Class
		}
		p("%s = %d%s", camel(c.Name), c.Value, comment)
	}
	p(")")
	p("")
	p("// IsHardError reports whether the reply code is a connection exception")
	p("// (class hard-error in the specification): the connection must be closed.")
	p("// Soft errors close only the channel.")
	p("func IsHardError(code uint16) bool {")
	p("switch code {")
	var hard []string
	for _, c := range s.Constants {
		if c.Class == "hard-error" {
			hard = append(hard, camel(c.Name))
		}
	}
	p("case %s:", strings.Join(hard, ", "))
	p("return true")
	p("}")
	p("return false")
	p("}")
	p("")
	p("// ReplyCodeName returns the specification's name of a reply code in the")
	p("// form used in reply texts, such as \"NOT_FOUND\", or \"\" if unknown.")
	p("func ReplyCodeName(code uint16) string {")
	p("switch code {")
	for _, c := range s.Constants {
		if c.Class != "" || strings.HasPrefix(c.Name, "reply-") {
			p("case %s:", camel(c.Name))
			p("return %q", strings.ToUpper(strings.ReplaceAll(c.Name, "-", "_")))
		}
	}
	p("}")
	p(`return ""`)
	p("}")
	p("")

	// Class ids.
	p("// Class ids.")
	p("const (")
	for _, c := range s.Classes {
		p("Class%s uint16 = %d", camel(c.Name), c.Index)
	}
	p(")")
	p("")

	var all []string
	var dispatch bytes.Buffer
	for _, c := range s.Classes {
		for _, m := range c.Methods {
			goName := camel(c.Name) + camel(m.Name)
			all = append(all, goName)
			fmt.Fprintf(&dispatch, "case %d<<16 | %d:\nreturn &%s{}\n", c.Index, m.Index, goName)

			type gf struct{ name, typ string }
			var fields []gf
			for _, f := range m.Fields {
				t, err := resolve(f)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", c.Name, m.Name, err)
				}
				if t == "timestamp" {
					usesTime = true
				}
				n := camel(f.Name)
				if r, ok := renamed[n]; ok {
					n = r
				}
				fields = append(fields, gf{n, t})
			}

			wireName := c.Name + "." + m.Name
			p("// %s is %s (class %d, method %d).", goName, wireName, c.Index, m.Index)
			if m.Content == 1 {
				p("// It is followed by a content header and body frames.")
			}
			p("type %s struct {", goName)
			for _, f := range fields {
				if f.typ == "bit" {
					p("%s bool", f.name)
				} else {
					p("%s %s", f.name, primitives[f.typ].goType)
				}
			}
			p("}")
			p("")
			p("// ClassID returns %d.", c.Index)
			p("func (*%s) ClassID() uint16 { return %d }", goName, c.Index)
			p("")
			p("// MethodID returns %d.", m.Index)
			p("func (*%s) MethodID() uint16 { return %d }", goName, m.Index)
			p("")
			p("// Name returns %q.", wireName)
			p("func (*%s) Name() string { return %q }", goName, wireName)
			p("")
			p("// HasContent reports whether the method carries content (%v).", m.Content == 1)
			p("func (*%s) HasContent() bool { return %v }", goName, m.Content == 1)
			p("")
			p("// Synchronous reports whether the method expects a reply (%v).", m.Synchronous == 1)
			p("func (*%s) Synchronous() bool { return %v }", goName, m.Synchronous == 1)
			p("")

			// Append.
			recv := "m"
			if len(fields) == 0 {
				recv = "_"
			}
			p("// Append appends the class id, method id and arguments to dst.")
			p("func (%s *%s) Append(dst []byte) ([]byte, error) {", recv, goName)
			needErr := false
			for _, f := range fields {
				if f.typ == "shortstr" || f.typ == "longstr" || f.typ == "table" {
					needErr = true
				}
			}
			if needErr {
				p("var err error")
			}
			p("dst = append(dst, %d, %d, %d, %d)", c.Index>>8, c.Index&0xff, m.Index>>8, m.Index&0xff)
			for i := 0; i < len(fields); {
				if fields[i].typ != "bit" {
					p(primitives[fields[i].typ].appendFn, fields[i].name)
					i++
					continue
				}
				p("{")
				p("var bits uint8")
				for bit := 0; i < len(fields) && fields[i].typ == "bit" && bit < 8; bit++ {
					p("if m.%s {\nbits |= 1 << %d\n}", fields[i].name, bit)
					i++
				}
				p("dst = append(dst, bits)")
				p("}")
			}
			p("return dst, nil")
			p("}")
			p("")

			// read.
			dvar := "d"
			if len(fields) == 0 {
				p("func (*%s) read(b []byte) error {", goName)
				p("d := decoder{b: b}")
			} else {
				p("func (m *%s) read(b []byte) error {", goName)
				p("%s := decoder{b: b}", dvar)
			}
			for i := 0; i < len(fields); {
				if fields[i].typ != "bit" {
					p(primitives[fields[i].typ].readFn, fields[i].name)
					i++
					continue
				}
				p("{")
				p("bits := d.u8()")
				for bit := 0; i < len(fields) && fields[i].typ == "bit" && bit < 8; bit++ {
					p("m.%s = bits&(1<<%d) != 0", fields[i].name, bit)
					i++
				}
				p("}")
			}
			p("return d.finish(%q)", wireName)
			p("}")
			p("")
		}
	}

	p("// newMethod returns a zero method for the class and method id, or nil.")
	p("func newMethod(classID, methodID uint16) Method {")
	p("switch uint32(classID)<<16 | uint32(methodID) {")
	b.Write(dispatch.Bytes())
	p("}")
	p("return nil")
	p("}")
	p("")
	p("// allMethods returns one zero value of every method, for tests.")
	p("func allMethods() []Method {")
	p("return []Method{")
	for _, n := range all {
		p("&%s{},", n)
	}
	p("}")
	p("}")

	var h bytes.Buffer
	h.WriteString("// Code generated by gen/main.go from the AMQP 0-9-1 specification; DO NOT EDIT.\n\n")
	h.WriteString("package wire\n\nimport (\n\"encoding/binary\"\n")
	if usesTime {
		h.WriteString("\"time\"\n")
	}
	h.WriteString("\n\"github.com/warrenmq/warren/mapping\"\n)\n\n")
	h.Write(b.Bytes())
	return h.Bytes(), nil
}
