package mapping

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NodeStats are the figures of one node that the management API shows
// per node (RabbitMQ's /api/nodes fields); cluster nodes send theirs to
// each other in heartbeats.
type NodeStats struct {
	// Uptime is measured by the node itself (no clock comparison across
	// machines); a heartbeat's is as old as the heartbeat.
	Uptime        time.Duration `json:"uptime"`
	MemUsed       int64         `json:"mem_used"`  // resident set size (Go's total on systems without /proc)
	MemLimit      int64         `json:"mem_limit"` // the memory alarm's watermark; <=0 off
	MemAlarm      bool          `json:"mem_alarm"`
	DiskFree      int64         `json:"disk_free"`
	DiskFreeLimit int64         `json:"disk_free_limit"` // <=0 off
	DiskAlarm     bool          `json:"disk_free_alarm"`
	FDUsed        int           `json:"fd_used"`
	FDTotal       int           `json:"fd_total"`
	Sockets       int           `json:"sockets_used"` // client connections
	Goroutines    int           `json:"proc_used"`
	Processors    int           `json:"processors"`
	PID           int           `json:"os_pid"`
	GoVersion     string        `json:"go_version"`
}

// LocalStats measures this node now.
func (r *Router) LocalStats() NodeStats {
	st := NodeStats{
		Uptime:        time.Since(r.started),
		MemUsed:       procRSS(),
		MemLimit:      r.cfg.Alarms.MemoryHighWatermark,
		DiskFreeLimit: r.cfg.Alarms.DiskFreeLimit,
		Sockets:       len(r.connections()),
		Goroutines:    runtime.NumGoroutine(),
		Processors:    runtime.NumCPU(),
		PID:           os.Getpid(),
		GoVersion:     runtime.Version(),
	}
	if st.MemUsed == 0 {
		s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		metrics.Read(s)
		st.MemUsed = int64(s[0].Value.Uint64())
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(r.cfg.DataDir, &fs); err == nil {
		st.DiskFree = int64(fs.Bavail) * int64(fs.Bsize)
	}
	for _, a := range r.Alarms() {
		switch a {
		case "memory":
			st.MemAlarm = true
		case "disk":
			st.DiskAlarm = true
		}
	}
	st.FDUsed, st.FDTotal = procFDs()
	return st
}

// procRSS reads VmRSS from /proc (Linux); 0 elsewhere.
func procRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// procFDs counts /proc/self/fd and reads the soft limit (Linux).
func procFDs() (used, limit int) {
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		used = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
				if len(f) > 0 {
					limit, _ = strconv.Atoi(f[0])
				}
			}
		}
	}
	return used, limit
}
