package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
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
	// RequestsPerCSR is what kube-apiserver served during the burst, from
	// every client (the bench's approvals and watch included), per CSR, by
	// "VERB resource[/subresource]".
	RequestsPerCSR map[string]float64 `json:"kubeAPIServerRequestsPerCSR,omitempty"`
}

// total is the CPU-seconds per 1,000 certificates of every process measured.
func (c cost) total() float64 {
	return c.SubjectCPUPer1000 + c.APIServerCPUPer1000 + c.EtcdCPUPer1000 + c.BenchCPUPer1000
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

// requestCounts is kube-apiserver's apiserver_request_total summed by
// "VERB resource[/subresource]", for what a burst sent it.
type requestCounts map[string]float64

// apiserverRequests reads apiserver_request_total from kube-apiserver's /metrics.
func apiserverRequests(ctx context.Context, c rest.Interface) (requestCounts, error) {
	body, err := c.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	return parseRequestTotals(string(body))
}

// parseRequestTotals sums the apiserver_request_total samples of a
// Prometheus text exposition by verb, resource and subresource.
func parseRequestTotals(text string) (requestCounts, error) {
	const metric = "apiserver_request_total{"
	counts := requestCounts{}
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, metric)
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("apiserver_request_total line %q: no closing brace", line)
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(rest[:end], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(v, `"`)
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[end+1:]), 64)
		if err != nil {
			return nil, fmt.Errorf("apiserver_request_total line %q: %w", line, err)
		}
		what := labels["verb"] + " " + labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			what += "/" + sub
		}
		counts[what] += v
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("no apiserver_request_total in kube-apiserver's metrics")
	}
	return counts, nil
}

// perCSR is what changed from before to after, per CSR, leaving out what
// rounds to nothing (a stray lease renewal, say).
func perCSR(before, after requestCounts, n int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := (v - before[k]) / float64(n); d >= 0.005 {
			out[k] = d
		}
	}
	return out
}

// formatPerCSR lists the counts largest first, "1.00 UPDATE certificatesigningrequests/status".
func formatPerCSR(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%.2f %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
