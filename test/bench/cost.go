package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What a burst costs, read from /proc: CPU time of the subject and of the
// control plane over the burst, and the subject's peak resident set.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (the kernel's ABI, whatever
// CONFIG_HZ is).
const clockTicks = 100

// cpuSeconds is the user plus system CPU time pid has used so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself, so fields are counted from the last ")".
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat %q: %d fields after the command name, want at least 13", stat, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat %q: utime %q, stime %q are not numbers", stat, f[11], f[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// peakRSS is VmHWM, the highest resident set pid has had since it started
// or since resetPeakRSS.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(string(b), "VmHWM")
}

// resetPeakRSS sets pid's VmHWM back to its current RSS (clear_refs "5",
// Linux ≥ 4.0; the process must be ours), so that the peak of one burst is
// measured apart from what came before.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// parseStatusKB reads one "Key:   N kB" line of /proc/<pid>/status, in bytes.
func parseStatusKB(status, key string) (int64, error) {
	for line := range strings.Lines(status) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == key+":" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", key, f[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s line in /proc status", key)
}

// processes are the pids a burst's cost is read from: the subject (0 when
// it runs in no process of its own), kube-apiserver, etcd and the bench itself.
type processes struct {
	subject, apiserver, etcd, bench int
}

// cpuSample is the CPU time of each process at one moment.
type cpuSample struct {
	subject, apiserver, etcd, bench float64
}

func (p processes) sample() (cpuSample, error) {
	var s cpuSample
	var err error
	read := func(pid int, into *float64) {
		if pid == 0 || err != nil {
			return
		}
		*into, err = cpuSeconds(pid)
	}
	read(p.subject, &s.subject)
	read(p.apiserver, &s.apiserver)
	read(p.etcd, &s.etcd)
	read(p.bench, &s.bench)
	return s, err
}

// cost is what one burst of N certificates cost: CPU-seconds over the burst
// (approvals start → last certificate seen) per 1,000 certificates, and the
// subject's peak RSS during it.
type cost struct {
	SubjectCPUPer1000   float64 `json:"subjectCPUSecondsPer1000"`
	APIServerCPUPer1000 float64 `json:"kubeAPIServerCPUSecondsPer1000"`
	EtcdCPUPer1000      float64 `json:"etcdCPUSecondsPer1000"`
	// BenchCPUPer1000 is the bench's own process: approvers and the watch
	// that times each certificate (and, for no subject, nothing else).
	BenchCPUPer1000     float64 `json:"benchCPUSecondsPer1000"`
	SubjectPeakRSSBytes int64   `json:"subjectPeakRSSBytes,omitempty"`
}

func costOf(before, after cpuSample, n int, peak int64) cost {
	per := func(a, b float64) float64 { return (b - a) / float64(n) * 1000 }
	return cost{
		SubjectCPUPer1000:   per(before.subject, after.subject),
		APIServerCPUPer1000: per(before.apiserver, after.apiserver),
		EtcdCPUPer1000:      per(before.etcd, after.etcd),
		BenchCPUPer1000:     per(before.bench, after.bench),
		SubjectPeakRSSBytes: peak,
	}
}
