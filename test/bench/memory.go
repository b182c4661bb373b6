package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/test/framework"
)

// memory is a signet process's resident set and Go heap in use.
type memory struct {
	RSSBytes int64 `json:"rssBytes"`
	// HeapInuseBytes is go_memstats_heap_inuse_bytes right after a forced
	// GC: what the process holds, not garbage it has yet to collect.
	HeapInuseBytes int64 `json:"heapInuseBytes"`
}

func (m memory) String() string {
	return fmt.Sprintf("RSS %.0f MiB, heap %.0f MiB", mib(m.RSSBytes), mib(m.HeapInuseBytes))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// readMemory reads VmRSS from /proc/<pid>/status and
// go_memstats_heap_inuse_bytes from signet's metrics endpoint.
func readMemory(ctx context.Context, sig *framework.Signet) (memory, error) {
	var m memory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", sig.Pid()))
	if err != nil {
		return m, err
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			m.RSSBytes = kb << 10
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sig.MetricsURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return m, fmt.Errorf("go_memstats_heap_inuse_bytes %q: %w", v, err)
			}
			m.HeapInuseBytes = int64(f)
			return m, nil
		}
	}
	return m, fmt.Errorf("no go_memstats_heap_inuse_bytes at %s", sig.MetricsURL)
}

// settledMemory samples signet every 2 s until its RSS has been stable (within
// 2% or 2 MiB) over three samples, and returns that RSS with the heap in use
// after a forced GC (pprof's heap?gc=1 runs one).
func settledMemory(ctx context.Context, sig *framework.Signet) (memory, error) {
	var last []memory
	deadline := time.Now().Add(3 * time.Minute)
	for {
		m, err := readMemory(ctx, sig)
		if err != nil {
			return m, err
		}
		last = append(last, m)
		if len(last) > 3 {
			last = last[1:]
		}
		if len(last) == 3 {
			lo, hi := last[0].RSSBytes, last[0].RSSBytes
			for _, s := range last {
				lo, hi = min(lo, s.RSSBytes), max(hi, s.RSSBytes)
			}
			if hi-lo <= max(hi/50, 2<<20) {
				if _, err := getSecure(ctx, sig, "/debug/pprof/heap?gc=1"); err != nil {
					return m, fmt.Errorf("forcing a GC: %w", err)
				}
				after, err := readMemory(ctx, sig)
				m.HeapInuseBytes = after.HeapInuseBytes
				return m, err
			}
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("signet's RSS still moving after 3 minutes: %v", last)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// restartSignet restarts signet and waits until the new process holds the
// leader lease, so that its CSR informer is running.
func restartSignet(ctx context.Context, kube kubernetes.Interface, sig *framework.Signet) error {
	start := time.Now().Add(-time.Second) // the lease's times have microsecond precision, the clock is shared
	if err := sig.Restart(ctx); err != nil {
		return err
	}
	for {
		lease, err := kube.CoordinationV1().Leases(framework.SignetNamespace).Get(ctx, "signet", metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" &&
			lease.Spec.AcquireTime != nil && lease.Spec.AcquireTime.After(start) {
			return nil
		}
		if time.Since(start) > time.Minute {
			return fmt.Errorf("restarted signet did not take the leader lease within a minute (last error: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// memorySample is signet's memory with a number of CSRs present.
type memorySample struct {
	CSRs int `json:"csrs"`
	// Process is "running" (the process that saw the CSRs created, once its
	// RSS settled) or "restarted" (a new process, after it took the lease and
	// its RSS settled).
	Process string `json:"process"`
	memory
}

// memoryScenario measures signet with 0 and then each of sizes CSRs present,
// for a signer name signet ignores, running and freshly restarted. The CSRs
// are deleted afterwards.
func (b *bench) memoryScenario(ctx context.Context, sizes []int) ([]memorySample, error) {
	var samples []memorySample
	present := 0
	for _, size := range append([]int{0}, sizes...) {
		if size > present {
			start := time.Now()
			prefix := fmt.Sprintf("memory-%d", present)
			if _, err := createCSRs(ctx, b.kube, "memory", prefix, "bench.example.com/memory", b.keys[0].request, size-present, b.writers, false); err != nil {
				return samples, err
			}
			b.logf("created %d CSRs in %s (%.0f/s)", size-present, since(start), float64(size-present)/time.Since(start).Seconds())
			present = size
		}
		running, err := settledMemory(ctx, b.sig)
		if err != nil {
			return samples, err
		}
		samples = append(samples, memorySample{CSRs: size, Process: "running", memory: running})
		if err := restartSignet(ctx, b.kube, b.sig); err != nil {
			return samples, err
		}
		restarted, err := settledMemory(ctx, b.sig)
		if err != nil {
			return samples, err
		}
		samples = append(samples, memorySample{CSRs: size, Process: "restarted", memory: restarted})
		b.logf("%d CSRs: running %v; restarted %v", size, running, restarted)
	}
	start := time.Now()
	n, err := deleteCSRs(ctx, b.kube, "memory", b.writers)
	b.logf("deleted %d CSRs in %s", n, since(start))
	return samples, err
}

// fetchProfile saves one of signet's profiles (a /debug/pprof path on its
// secure port: k8s.io/apiserver's default profiling) to file.
func fetchProfile(ctx context.Context, sig *framework.Signet, pprofPath, file string) error {
	body, err := getSecure(ctx, sig, pprofPath)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

// getSecure GETs path from signet's secure port as the admin.
func getSecure(ctx context.Context, sig *framework.Signet, path string) ([]byte, error) {
	hc, err := rest.HTTPClientFor(sig.ClientConfig())
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sig.URL+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s: %.200s", sig.URL, path, resp.Status, body)
	}
	return body, nil
}
