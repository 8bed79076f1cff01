package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procMem reads a process's resident memory (VmRSS) and its peak since
// the process started (VmHWM), in KiB, from /proc/<pid>/status.
func procMem(pid int) (rssKiB, hwmKiB int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		} else if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwmKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return rssKiB, hwmKiB, nil
}

// rss returns a process's resident memory as the kernel reports it.
func rss(pid int) string {
	r, _, err := procMem(pid)
	if err != nil {
		return "?"
	}
	return mib(r)
}

// mib formats KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

// phaseMem is what memSampler saw during one phase.
type phaseMem struct {
	name     string
	peakRSS  int64 // KiB, highest VmRSS sampled
	peakHWM  int64 // KiB, highest VmHWM sampled (the process's own peak, which catches spikes between samples)
	lastRSS  int64 // KiB, the last sample
	samples  int
	started  time.Time
	duration time.Duration
}

// memSampler samples the memory of the Warren process under test every
// interval, across restarts (watch names the current process), and keeps
// the peaks of each phase. It owns one goroutine, ended by stop.
type memSampler struct {
	mu     sync.Mutex
	pid    int
	phases []*phaseMem

	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once
	result  []phaseMem
}

func newMemSampler(interval time.Duration) *memSampler {
	s := &memSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	return s
}

// watch switches sampling to process pid (a restarted Warren).
func (s *memSampler) watch(pid int) {
	s.mu.Lock()
	s.pid = pid
	s.mu.Unlock()
	s.sample()
}

// phase ends the current phase and starts one called name.
func (s *memSampler) phase(name string) {
	s.sample()
	s.mu.Lock()
	now := time.Now()
	if n := len(s.phases); n > 0 {
		s.phases[n-1].duration = now.Sub(s.phases[n-1].started)
	}
	s.phases = append(s.phases, &phaseMem{name: name, started: now})
	s.mu.Unlock()
	s.sample()
}

func (s *memSampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid == 0 || len(s.phases) == 0 {
		return
	}
	r, h, err := procMem(s.pid)
	if err != nil || r == 0 { // gone, or a zombie between kill and wait
		return
	}
	p := s.phases[len(s.phases)-1]
	p.peakRSS = max(p.peakRSS, r)
	p.peakHWM = max(p.peakHWM, h)
	p.lastRSS = r
	p.samples++
}

// current returns the latest sample of the current phase.
func (s *memSampler) current() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.phases) == 0 {
		return 0
	}
	return s.phases[len(s.phases)-1].lastRSS
}

// stop ends sampling and the last phase and returns every phase; later
// calls return the same.
func (s *memSampler) stop() []phaseMem {
	s.stopped.Do(func() {
		s.phase("")
		close(s.quit)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.phases[:len(s.phases)-1] {
			s.result = append(s.result, *p)
		}
	})
	return s.result
}
