package mapping_test

import (
	"sort"
	"testing"

	"github.com/warrenmq/warren/mapping"
)

// FuzzLinkFrames feeds arbitrary frames to every handler of the node
// link: none may panic, and the node still serves its queue afterwards.
// The seeds are well-formed frames of each kind, so mutations explore
// truncated and altered fields.
func FuzzLinkFrames(f *testing.F) {
	frames := mapping.LinkFramesForTest("fz")
	kinds := make([]string, 0, len(frames))
	for k := range frames {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		for _, fr := range frames[k] {
			f.Add(uint8(i), fr)
		}
	}
	f.Add(uint8(0), []byte{})
	rs := openClusterRouters(f, 2)
	conn, err := rs[0].Connect("guest", "/", mapping.ConnInfo{Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(conn.Close)
	ch := conn.OpenChannel(1, newFakeSink())
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		// (Re)declared each time: a fuzzed delete frame may remove it.
		if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "fz"}, false); err != nil {
			t.Fatal(err)
		}
		rs[0].FeedLinkForTest(kinds[int(kind)%len(kinds)], data)
		if _, err := ch.DeclareQueue(mapping.QueueSpec{Name: "fz"}, false); err != nil {
			t.Fatalf("the node does not serve after a frame: %v", err)
		}
	})
}
