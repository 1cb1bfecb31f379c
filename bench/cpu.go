package main

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// Linux on every architecture Go supports here).
const clockTicks = 100

// cpuMeter reads the CPU time of the processes behind a few servers of the
// stack (the one listening on a loopback URL's port, with its descendants:
// PostgreSQL's backends are children of the postmaster) and of this
// process, from /proc, so a benchmark can say which of them was busy while
// it ran. A server it cannot find is left out (not an error: /proc may be
// unreadable); the report says so.
type cpuMeter struct {
	names []string
	roots []int // pid per name; 0: not found
}

// newCPUMeter finds the processes listening on the ports of the given
// URLs (name → URL); "self" names this process.
func newCPUMeter(servers [][2]string) *cpuMeter {
	m := &cpuMeter{}
	listeners := listeningInodes()
	for _, s := range servers {
		pid := 0
		if s[1] == "self" {
			pid = os.Getpid()
		} else if port := urlPort(s[1]); port > 0 {
			pid = pidOfSocket(listeners[port])
		}
		m.names = append(m.names, s[0])
		m.roots = append(m.roots, pid)
	}
	return m
}

// sample is each server's CPU time so far (-1: not found), in seconds.
func (m *cpuMeter) sample() []float64 {
	children := childrenByParent()
	out := make([]float64, len(m.roots))
	for i, pid := range m.roots {
		if pid == 0 {
			out[i] = -1
			continue
		}
		if pid == os.Getpid() {
			out[i] = processCPU(pid) // this process alone
			continue
		}
		total := 0.0
		for _, p := range descendants(pid, children) {
			total += processCPU(p)
		}
		out[i] = total
	}
	return out
}

// cpuUse is what the servers used between two samples over wall.
type cpuUse struct {
	names []string
	secs  []float64 // -1: not found
	wall  time.Duration
}

func (m *cpuMeter) since(before []float64, wall time.Duration) cpuUse {
	after := m.sample()
	u := cpuUse{names: m.names, wall: wall, secs: make([]float64, len(after))}
	for i := range after {
		if after[i] < 0 || before[i] < 0 {
			u.secs[i] = -1
			continue
		}
		u.secs[i] = after[i] - before[i]
	}
	return u
}

// cores is a server's CPU time over the wall time: how many cores it kept
// busy on average (-1: not found).
func (u cpuUse) cores(name string) float64 {
	for i, n := range u.names {
		if n == name && u.secs[i] >= 0 && u.wall > 0 {
			return u.secs[i] / u.wall.Seconds()
		}
	}
	return -1
}

// text renders the use as "fauxqs 0.97 cores (18.2 s of CPU), …".
func (u cpuUse) text() string {
	var parts []string
	for i, n := range u.names {
		if u.secs[i] < 0 {
			parts = append(parts, n+" not found in /proc")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f cores (%.1f s of CPU)", n, u.secs[i]/max(u.wall.Seconds(), 1e-9), u.secs[i]))
	}
	return strings.Join(parts, ", ")
}

// busiest is the server that used the most CPU, and its cores.
func (u cpuUse) busiest() (string, float64) {
	best, cores := "", -1.0
	for _, n := range u.names {
		if c := u.cores(n); c > cores {
			best, cores = n, c
		}
	}
	return best, cores
}

func urlPort(raw string) int {
	if !strings.Contains(raw, "://") {
		raw = "tcp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// listeningInodes maps each listening TCP port to its socket's inode
// (/proc/net/tcp and tcp6, state 0A).
func listeningInodes() map[int]string {
	out := map[int]string{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil {
				out[int(port)] = fields[9]
			}
		}
		fh.Close()
	}
	return out
}

// pidOfSocket finds the process holding the socket inode (0: none).
func pidOfSocket(inode string) int {
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, err := os.ReadDir(filepath.Join(p, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(p, "fd", fd.Name())); err == nil && link == want {
				pid, _ := strconv.Atoi(filepath.Base(p))
				return pid
			}
		}
	}
	return 0
}

// statFields are /proc/<pid>/stat's fields after the command's name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// processCPU is a process's user + system time in seconds (its own
// threads; children reaped count in cutime, which a server's live
// children do not reach, so descendants are summed instead).
func processCPU(pid int) float64 {
	f := statFields(pid)
	// After the name: state(0) ppid(1) … utime(11) stime(12).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

func childrenByParent() map[int][]int {
	out := map[int][]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out[ppid] = append(out[ppid], pid)
	}
	return out
}

func descendants(root int, children map[int][]int) []int {
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
