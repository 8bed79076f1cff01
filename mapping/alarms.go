package mapping

import (
	"bufio"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Resource alarms, as RabbitMQ's: when memory use is above its high
// watermark or free disk below its limit, publishers are blocked (each
// front applies back-pressure) while consumers keep draining.
const alarmInterval = time.Second

// AlarmConfig sets the thresholds. Zero values pick defaults: 40% of
// physical memory, and 50 MB of free disk (RabbitMQ's defaults).
type AlarmConfig struct {
	MemoryHighWatermark int64 // bytes; <0 disables
	DiskFreeLimit       int64 // bytes; <0 disables
	// MemoryRelative is the watermark as a fraction of physical memory,
	// used when MemoryHighWatermark is 0; 0 means 0.4.
	MemoryRelative float64
}

type alarms struct {
	mu      sync.Mutex
	changed *sync.Cond
	memory  bool
	disk    bool
	forced  bool // SetAlarmsForTest: the sampler leaves the alarms alone
	// active mirrors memory || disk for the publish path, which checks it
	// on every message without taking mu.
	active atomic.Bool
	quit   chan struct{}
	done   chan struct{}
	watch  []func(active bool, reason string)
}

func (r *Router) startAlarms() {
	a := &r.alarms
	a.changed = sync.NewCond(&a.mu)
	a.quit = make(chan struct{})
	a.done = make(chan struct{})
	cfg := r.cfg.Alarms
	if cfg.MemoryHighWatermark == 0 {
		rel := cfg.MemoryRelative
		if rel <= 0 {
			rel = 0.4
		}
		cfg.MemoryHighWatermark = int64(float64(physicalMemory()) * rel)
	}
	if cfg.DiskFreeLimit == 0 {
		cfg.DiskFreeLimit = 50_000_000
	}
	r.cfg.Alarms = cfg
	go r.alarmLoop()
}

// alarmLoop runs in its own goroutine until Close; it samples memory and
// disk and flips the alarms.
func (r *Router) alarmLoop() {
	defer close(r.alarms.done)
	t := time.NewTicker(alarmInterval)
	defer t.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	for {
		cfg := r.cfg.Alarms
		mem := false
		if cfg.MemoryHighWatermark > 0 {
			metrics.Read(sample)
			used := int64(sample[0].Value.Uint64() - sample[1].Value.Uint64())
			mem = used > cfg.MemoryHighWatermark
		}
		disk := false
		if cfg.DiskFreeLimit > 0 {
			var st syscall.Statfs_t
			if err := syscall.Statfs(r.cfg.DataDir, &st); err == nil {
				disk = int64(st.Bavail)*int64(st.Bsize) < cfg.DiskFreeLimit
			}
		}
		r.alarms.mu.Lock()
		forced := r.alarms.forced
		r.alarms.mu.Unlock()
		if !forced {
			r.setAlarms(mem, disk)
		}
		select {
		case <-r.alarms.quit:
			return
		case <-t.C:
		}
	}
}

func (r *Router) setAlarms(mem, disk bool) {
	a := &r.alarms
	a.mu.Lock()
	was := a.memory || a.disk
	if mem != a.memory || disk != a.disk {
		r.log.Warn("resource alarm", "memory", mem, "disk", disk)
	}
	a.memory, a.disk = mem, disk
	now := mem || disk
	a.active.Store(now)
	watch := a.watch
	a.changed.Broadcast()
	a.mu.Unlock()
	if was != now {
		reason := r.alarmReason()
		for _, f := range watch {
			f(now, reason)
		}
	}
}

// SetAlarmsForTest forces the alarms (tests of back-pressure); forcing
// both off hands them back to the sampler.
func (r *Router) SetAlarmsForTest(memory, disk bool) {
	r.alarms.mu.Lock()
	r.alarms.forced = memory || disk
	r.alarms.mu.Unlock()
	r.setAlarms(memory, disk)
}

// Alarms reports the active alarms: "memory", "disk".
func (r *Router) Alarms() []string {
	a := &r.alarms
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	if a.memory {
		out = append(out, "memory")
	}
	if a.disk {
		out = append(out, "disk")
	}
	return out
}

func (r *Router) alarmReason() string {
	al := r.Alarms()
	if len(al) == 0 {
		return ""
	}
	return "low on " + strings.Join(al, " and ")
}

// Blocked reports whether publishers must wait, and why.
func (r *Router) Blocked() (bool, string) {
	reason := r.alarmReason()
	return reason != "", reason
}

// WaitUnblocked blocks until no alarm is active or quit is closed. It
// returns false when quit closed first.
func (r *Router) WaitUnblocked(quit <-chan struct{}) bool {
	a := &r.alarms
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-quit:
			a.mu.Lock()
			a.changed.Broadcast()
			a.mu.Unlock()
		case <-stop:
		}
	}()
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.memory || a.disk {
		select {
		case <-quit:
			return false
		default:
		}
		a.changed.Wait()
	}
	return true
}

// WatchAlarms registers f to be told when publishers become blocked or
// unblocked (fronts send connection.blocked / a flow frame).
func (r *Router) WatchAlarms(f func(active bool, reason string)) {
	a := &r.alarms
	a.mu.Lock()
	a.watch = append(a.watch, f)
	a.mu.Unlock()
}

func (r *Router) stopAlarms() {
	close(r.alarms.quit)
	<-r.alarms.done
	a := &r.alarms
	a.mu.Lock()
	a.memory, a.disk = false, false
	a.active.Store(false)
	a.changed.Broadcast()
	a.mu.Unlock()
}

// physicalMemory reads MemTotal from /proc/meminfo (0 if unknown, which
// disables the memory alarm).
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
