package mapping_test

import (
	"encoding/json"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// TestParameters: runtime parameters survive a restart, are listed per
// component and vhost, and go away with their vhost.
func TestParameters(t *testing.T) {
	dir := t.TempDir()
	r := openRouterAt(t, dir)
	if err := r.AddVHost("v1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []mapping.Parameter{
		{Component: "shovel", VHost: "/", Name: "a", Value: json.RawMessage(`{"x":1}`), Owner: "guest"},
		{Component: "shovel", VHost: "v1", Name: "b", Value: json.RawMessage(`{"x":2}`)},
		{Component: "other", VHost: "v1", Name: "c", Value: json.RawMessage(`[]`)},
	} {
		if err := r.PutParameter(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.PutParameter(mapping.Parameter{Component: "shovel", VHost: "nope", Name: "x", Value: json.RawMessage(`{}`)}); mapping.KindOf(err) != mapping.KindNotFound {
		t.Fatalf("parameter in a missing vhost: %v", err)
	}
	if err := r.PutParameter(mapping.Parameter{Component: "shovel", VHost: "/", Name: "x", Value: json.RawMessage(`{`)}); err == nil {
		t.Fatal("invalid JSON accepted")
	}
	r.Close()
	r = openRouterAt(t, dir)
	all, err := r.Parameters("shovel", "")
	if err != nil || len(all) != 2 || all[0].Name != "a" || all[0].Owner != "guest" || string(all[1].Value) != `{"x":2}` {
		t.Fatalf("after restart: %+v %v", all, err)
	}
	if err := r.DeleteVHost("v1"); err != nil {
		t.Fatal(err)
	}
	if ps, _ := r.Parameters("shovel", ""); len(ps) != 1 || ps[0].VHost != "/" {
		t.Fatalf("after deleting v1: %+v", ps)
	}
	if ps, _ := r.Parameters("other", ""); len(ps) != 0 {
		t.Fatalf("other component's parameter in v1 left: %+v", ps)
	}
	if err := r.DeleteParameter("shovel", "/", "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteParameter("shovel", "/", "a"); mapping.KindOf(err) != mapping.KindNotFound {
		t.Fatalf("second delete: %v", err)
	}
}
