package amqpserver

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/warrenmq/warren/amqpserver/wire"
)

// appendCoalesced must never let a multiple=true frame cover a message
// that is unconfirmed or confirmed the other way.
func TestAppendCoalesced(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tags, others []uint64
		low          uint64
		want         string
	}{
		{"one below low", []uint64{1}, nil, 2, "1+"},
		{"run below low", []uint64{1, 2, 3}, nil, 4, "3+"},
		{"run then gap", []uint64{1, 2, 5, 6}, nil, 3, "2+ 5 6"},
		{"all above low", []uint64{4, 5}, nil, 3, "4 5"},
		{"nack inside the run", []uint64{1, 2, 4, 5}, []uint64{3}, 6, "2+ 4 5"},
		{"nack first", []uint64{2, 3}, []uint64{1}, 4, "2 3"},
		{"none", nil, nil, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := appendCoalesced(nil, 1, tc.tags, tc.others, tc.low, func(tag uint64, multiple bool) wire.Method {
				return &wire.BasicAck{DeliveryTag: tag, Multiple: multiple}
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			r := wire.NewReader(strings.NewReader(string(b)), 0)
			for {
				f, err := r.ReadFrame()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				m, err := wire.ReadMethod(f.Payload)
				if err != nil {
					t.Fatal(err)
				}
				a := m.(*wire.BasicAck)
				s := fmt.Sprint(a.DeliveryTag)
				if a.Multiple {
					s += "+"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}
