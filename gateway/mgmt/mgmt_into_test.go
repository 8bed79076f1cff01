package mgmt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/warrenmq/warren/gateway/internal/validate"
)

// The handlers take a validated body through validate.Assign instead of
// decoding it again; these check that their own body types come out as
// encoding/json (UseNumber) makes them from the same JSON.

// mgIntoSame compares validate.Assign on doc's tree with encoding/json on
// the tree's JSON, for T: the same value, or an error from both.
func mgIntoSame[T any](t *testing.T, doc []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil || dec.More() {
		return
	}
	canon, err := json.Marshal(tree)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	var want, got T
	dec = json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	werr := dec.Decode(&want)
	gerr := validate.Assign(tree, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s into %T: encoding/json says %v, Assign says %v", canon, got, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%s into %T:\nencoding/json %#v\nAssign        %#v", canon, got, want, got)
	}
}

func mgIntoAll(t *testing.T, doc []byte) {
	mgIntoSame[mgExchangeBody](t, doc)
	mgIntoSame[mgPublishBody](t, doc)
	mgIntoSame[mgBindingBody](t, doc)
	mgIntoSame[mgVHostBody](t, doc)
	mgIntoSame[mgUsersBody](t, doc)
	mgIntoSame[mgQueueBody](t, doc)
	mgIntoSame[mgGetBody](t, doc)
	mgIntoSame[mgParameterBody](t, doc)
	mgIntoSame[mgDefinitions](t, doc)
	mgIntoSame[map[string]any](t, doc)
}

const (
	mgIntoPublishDoc     = `{"properties":{"delivery_mode":2,"priority":"5","expiration":60000,"headers":{"a":{"b":[true]}},"content_type":"text/plain","timestamp":1700000000},"routing_key":"rk","payload":"aGk=","payload_encoding":"base64"}`
	mgIntoDefinitionsDoc = `{"rabbit_version":"3.10.8","users":[{"name":"u","password_hash":"h","hashing_algorithm":"rabbit_password_hashing_sha256","tags":["administrator"],"limits":{}}],` +
		`"vhosts":[{"name":"/","limits":[],"metadata":{"description":"d","tags":[]}}],` +
		`"permissions":[{"user":"u","vhost":"/","configure":".*","write":".*","read":".*"}],"topic_permissions":[],"parameters":[],"global_parameters":[{"name":"cluster_name","value":"x"}],"policies":[],` +
		`"queues":[{"name":"q","vhost":"/","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"classic"}}],` +
		`"exchanges":[{"name":"e","vhost":"/","type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{}}],` +
		`"bindings":[{"source":"e","vhost":"/","destination":"q","destination_type":"queue","routing_key":"#","arguments":{}}]}`
)

var mgIntoDocs = []string{
	`{}`, `null`, `[]`, `"x"`, `7`,
	`{"type":"topic","durable":true,"auto_delete":"false","internal":null,"arguments":{"alternate-exchange":"ae","x":[1,2.5]}}`,
	`{"type":1}`, `{"durable":"maybe"}`, `{"durable":0}`, `{"arguments":[]}`, `{"arguments":null}`, `{"Type":"direct","TYPE":"fanout"}`,
	mgIntoPublishDoc,
	`{"properties":{"delivery_mode":1.5}}`, `{"properties":{"expiration":"60000"}}`, `{"properties":{"expiration":1.5}}`,
	`{"properties":{"priority":null,"reply_to":null}}`, `{"properties":{"timestamp":"x"}}`, `{"properties":[]}`, `{"properties":null}`,
	`{"routing_key":null,"payload":null}`, `{"routing_key":5}`, `{"payload":["x"]}`,
	`{"routing_key":"a.b","arguments":{"x-match":"all"}}`,
	`{"description":"d","tags":["a","b"],"tracing":"true"}`, `{"tags":"a,b"}`, `{"tracing":1}`,
	`{"users":["a","b"]}`, `{"users":"a"}`, `{"users":[1]}`, `{"users":null}`,
	`{"durable":false,"exclusive":true,"arguments":{"x-queue-type":"quorum","x-max-length":10}}`,
	`{"count":5,"ackmode":"ack_requeue_true","encoding":"auto","truncate":"50000"}`, `{"count":1.5}`, `{"count":"x"}`, `{"count":1e3}`, `{"count":-1}`,
	`{"value":{"src-uri":"amqp://","src-queue":"q","dest-uri":["amqp://a"],"prefetch-count":10},"component":"shovel","vhost":"/","name":"s"}`,
	`{"value":null}`, `{"value":"x"}`, `{"component":1}`,
	mgIntoDefinitionsDoc,
	`{"users":[{"name":1}]}`, `{"queues":[{"durable":"x"}]}`, `{"queues":{}}`, `{"permissions":[{"user":null}]}`, `{"vhosts":[null]}`,
}

func TestMgmtAssignMatchesEncodingJSON(t *testing.T) {
	for _, d := range mgIntoDocs {
		mgIntoAll(t, []byte(d))
	}
}

func FuzzMgmtAssign(f *testing.F) {
	for _, d := range mgIntoDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { mgIntoAll(t, doc) })
}

// BenchmarkMgmtBody: a definitions document and a publish body, taken
// from the validator's tree (assign) against decoding the bytes again
// (decode, what the handlers did before).
func BenchmarkMgmtBody(b *testing.B) {
	for _, c := range []struct {
		name, doc string
		into      func() any
	}{
		{"definitions", mgIntoDefinitionsDoc, func() any { return new(mgDefinitions) }},
		{"publish", mgIntoPublishDoc, func() any { return new(mgPublishBody) }},
	} {
		dec := json.NewDecoder(bytes.NewReader([]byte(c.doc)))
		dec.UseNumber()
		var tree any
		if err := dec.Decode(&tree); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/assign", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := validate.Assign(tree, c.into()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dec := json.NewDecoder(bytes.NewReader([]byte(c.doc)))
				dec.UseNumber()
				if err := dec.Decode(c.into()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
