// Package clustertest gives tests loopback ports for cluster routes.
//
// A cluster's nodes must know each other's route addresses before they
// start, so a test picks ports, releases them and hands them to the
// nodes. A port taken with net.Listen(":0") comes from the kernel's
// ephemeral range, and between its release and the node's bind the
// kernel may give it to anyone: another test binary of the same `go
// test ./...` run listening on ":0", or an outgoing connection. A route
// then reaches another test's node ("Authorization Violation") or the
// bind fails. Ports here are taken below the ephemeral range, which the
// kernel never hands out by itself, and claimed with a file created
// exclusively in a directory that every test binary shares, so two
// tests running at once never get the same port.
package clustertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// staleClaim is the age after which a claim is taken for one left by a
// test binary that was killed before its cleanup ran.
const staleClaim = 2 * time.Hour

// lowest is the lowest port handed out (well above the well-known and
// registered ports that local services tend to use).
const lowest = 20000

// Ports claims n loopback addresses ("127.0.0.1:port") that no other
// test of this machine gets until the test ends.
func Ports(t testing.TB, n int) []string {
	t.Helper()
	hi := ephemeralLow()
	if hi-lowest < 1000 {
		return kernelPorts(t, n) // no room below the ephemeral range
	}
	dir := filepath.Join(os.TempDir(), "warren-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var out []string
	for len(out) < n {
		port := lowest + rand.IntN(hi-lowest)
		claim := filepath.Join(dir, strconv.Itoa(port))
		f, err := os.OpenFile(claim, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			if fi, err := os.Stat(claim); err == nil && time.Since(fi.ModTime()) > staleClaim {
				os.Remove(claim)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), t.Name())
		f.Close()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil { // used by something that is not a test of ours
			continue // the claim stays: nobody else tries it for a while
		}
		ln.Close()
		t.Cleanup(func() { os.Remove(claim) })
		out = append(out, addr)
	}
	return out
}

// ephemeralLow is the low end of the kernel's ephemeral port range
// (Linux; 32768 elsewhere, the common default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}

// kernelPorts reserves n ports from the kernel and releases them.
func kernelPorts(t testing.TB, n int) []string {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ln.Addr().String())
		ln.Close()
	}
	return out
}
