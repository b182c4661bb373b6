package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// result is one subject in one latency or throughput scenario.
type result struct {
	Scenario string `json:"scenario"`
	// SubjectKey names the subject for programs: ceiling, ceiling-sar,
	// signet, kcm-defaults, kcm-qps5000, none; Subject for people.
	SubjectKey string `json:"subjectKey,omitempty"`
	Subject    string `json:"subject"`
	N          int    `json:"n"`
	// PerSecond is CSRs (or, for sign-subresource, requests) per second.
	PerSecond  float64 `json:"perSecond"`
	P50Millis  float64 `json:"p50Millis"`
	P95Millis  float64 `json:"p95Millis"`
	P99Millis  float64 `json:"p99Millis"`
	WallMillis float64 `json:"wallMillis"`
	// Cost is what the burst cost (bursts only).
	Cost *cost `json:"cost,omitempty"`
	// Runs are the figures of every repeat of a burst; the result is the
	// run with the median throughput.
	Runs []runFigures `json:"runs,omitempty"`
}

// runFigures are one repeat of a burst.
type runFigures struct {
	PerSecond float64 `json:"perSecond"`
	Cost      *cost   `json:"cost,omitempty"`
}

// report is everything one run measured; report.json is it as JSON,
// report.md as tables.
type report struct {
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	// WallSeconds is the whole run, control plane start to report.
	WallSeconds float64 `json:"wallSeconds"`
	CPUs        int     `json:"cpus"`
	// LoadAverage is /proc/loadavg's first three fields at start and end:
	// anything well above 0 means other work shared the machine.
	LoadAverage [2]string      `json:"loadAverage"`
	Phases      []phase        `json:"phases"`
	Results     []result       `json:"results"`
	Memory      []memorySample `json:"memory,omitempty"`
	List        *listReport    `json:"list,omitempty"`
	Ratios      []ratio        `json:"ratios"`
	Failures    []string       `json:"failures,omitempty"`
}

type phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// ratio is one of the comparisons the issue asks for, with its target from
// DESIGN.md §6 where there is one.
type ratio struct {
	What   string  `json:"what"`
	Value  float64 `json:"value"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

func (r *report) phase(name string, start time.Time) {
	r.Phases = append(r.Phases, phase{Name: name, Seconds: time.Since(start).Seconds()})
}

func (r *report) fail(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "   FAILED: %v\n", err)
		r.Failures = append(r.Failures, err.Error())
	}
}

// find returns the result of scenario for the subject with key.
func (r *report) find(scenario, key string) (result, bool) {
	for _, res := range r.Results {
		if res.Scenario == scenario && res.SubjectKey == key {
			return res, true
		}
	}
	return result{}, false
}

// Targets from DESIGN.md §6; kube-apiserver's CPU is compared with the
// ceiling that matches the scenario.
const (
	targetBurst        = 0.9 // signet's burst rate ≥ this × the matching ceiling's
	targetCPUVsKCM     = 1.0 // signet's CPU per 1,000 ≤ this × kube-controller-manager's at QPS 5000
	targetAPIServerCPU = 1.1 // kube-apiserver's CPU per 1,000 with signet ≤ this × with the matching ceiling
	targetIdleP99      = 1.5
)

func ratios(r *report) []ratio {
	var out []ratio
	add := func(what string, num, den float64, target string, met func(float64) bool) {
		if num == 0 || den == 0 {
			return
		}
		q := ratio{What: what, Value: num / den, Target: target}
		if met != nil {
			ok := met(q.Value)
			q.Met = &ok
		}
		out = append(out, q)
	}
	atLeast := func(t float64) func(float64) bool { return func(v float64) bool { return v >= t } }
	atMost := func(t float64) func(float64) bool { return func(v float64) bool { return v <= t } }
	costs := func(scenario, key string) (result, cost) {
		res, _ := r.find(scenario, key)
		if res.Cost == nil {
			return res, cost{}
		}
		return res, *res.Cost
	}
	_, driver := costs("approvals-only", keyNone)

	for _, sc := range []struct{ scenario, label, ceiling, ceilingLabel string }{
		{"csr-burst", "one requester, P-256", keyCeiling, "ceiling"},
		{"csr-burst-rsa2048", "one requester, RSA-2048", keyCeiling, "ceiling"},
		{"csr-burst-distinct", "distinct requesters", keyCeilingSAR, "SubjectAccessReview ceiling"},
	} {
		s, sc2 := costs(sc.scenario, keySignet)
		c, cc := costs(sc.scenario, sc.ceiling)
		_, kq := costs(sc.scenario, keyKCMQPS)
		kd, _ := r.find(sc.scenario, keyKCM)
		kqr, _ := r.find(sc.scenario, keyKCMQPS)
		target := func(t string, f func(float64) bool) (string, func(float64) bool) {
			if sc.scenario == "csr-burst-rsa2048" {
				return "", nil // the targets are set on P-256 bursts
			}
			return t, f
		}
		t, f := target(fmt.Sprintf("≥ %.1f", targetBurst), atLeast(targetBurst))
		add("burst CSRs/s ("+sc.label+"): signet / "+sc.ceilingLabel, s.PerSecond, c.PerSecond, t, f)
		add("burst CSRs/s ("+sc.label+"): signet / kube-controller-manager (defaults)", s.PerSecond, kd.PerSecond, "", nil)
		add("burst CSRs/s ("+sc.label+"): signet / kube-controller-manager (QPS 5000)", s.PerSecond, kqr.PerSecond, "", nil)
		t, f = target(fmt.Sprintf("≤ %.1f", targetCPUVsKCM), atMost(targetCPUVsKCM))
		if sc.scenario == "csr-burst-distinct" {
			// kube-controller-manager checks no reference: informative only.
			t, f = "", nil
		}
		add("CPU-s per 1,000 certificates ("+sc.label+"): signet / kube-controller-manager (QPS 5000)", sc2.SubjectCPUPer1000, kq.SubjectCPUPer1000, t, f)
		add("CPU-s per 1,000 certificates ("+sc.label+"): signet / "+sc.ceilingLabel, sc2.SubjectCPUPer1000, cc.SubjectCPUPer1000, "", nil)
		t, f = target(fmt.Sprintf("≤ %.1f", targetAPIServerCPU), atMost(targetAPIServerCPU))
		add("kube-apiserver CPU-s per 1,000 certificates ("+sc.label+"): with signet / with the "+sc.ceilingLabel,
			sc2.APIServerCPUPer1000, cc.APIServerCPUPer1000, t, f)
		if driver.APIServerCPUPer1000 > 0 && cc.APIServerCPUPer1000 > driver.APIServerCPUPer1000 {
			add("kube-apiserver CPU-s per 1,000 certificates ("+sc.label+"), less the approvals-only driving: with signet / with the "+sc.ceilingLabel,
				sc2.APIServerCPUPer1000-driver.APIServerCPUPer1000, cc.APIServerCPUPer1000-driver.APIServerCPUPer1000, "", nil)
		}
		add("kube-apiserver CPU-s per 1,000 certificates ("+sc.label+"): with signet / with kube-controller-manager (QPS 5000)",
			sc2.APIServerCPUPer1000, kq.APIServerCPUPer1000, "", nil)
		// On a CPU-bound machine a burst's rate is the cores over the CPU
		// every process spends per certificate: what the rates would be
		// if CPU alone decided them.
		add("burst CSRs/s ("+sc.label+") if CPU alone decided: Σ CPU-s per 1,000 with the "+sc.ceilingLabel+" / with signet",
			cc.total(), sc2.total(), "", nil)
	}
	s, _ := r.find("drain", keySignet)
	c, _ := r.find("drain", keyCeiling)
	add("drain CSRs/s: signet / ceiling", s.PerSecond, c.PerSecond, "", nil)
	s, _ = r.find("idle", keySignet)
	c, _ = r.find("idle", keyCeiling)
	add("idle p99: signet / ceiling", s.P99Millis, c.P99Millis, fmt.Sprintf("≤ %.1f", targetIdleP99), atMost(targetIdleP99))

	if r.List != nil && len(r.List.Timings) == 6 {
		t := r.List.Timings
		add("list time (median): kubectl get signers -A / kubectl get issuers -A (pages of 500 both)", t[0].MedianMillis, t[1].MedianMillis, "≤ 1.0", atMost(1.0))
		add("list time (median): client-go signers / dynamic issuers (pages of 500 both)", t[2].MedianMillis, t[3].MedianMillis, "≤ 1.0", atMost(1.0))
		add("list time (median): GET signers / GET issuers, JSON with only the continue token decoded (pages of 500 both)", t[4].MedianMillis, t[5].MedianMillis, "", nil)
	}
	get, _ := r.find("sign-subresource", "get")
	sign, _ := r.find("sign-subresource", "sign")
	add("sign subresource / get signer: requests/s", sign.PerSecond, get.PerSecond, "", nil)
	add("sign subresource / get signer: p50", sign.P50Millis, get.P50Millis, "", nil)
	add("sign subresource / get signer: p99", sign.P99Millis, get.P99Millis, "", nil)
	return out
}

// write prints the report as Markdown and writes report.md, report.json and
// latency.svg into dir.
func (r *report) write(dir string) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# make bench\n\n```\n%s\n```\n\n", r.Command)
	fmt.Fprintf(&md, "Started %s; total wall time %s on %d CPUs; load average %s at the start, %s at the end.\n",
		r.Started.Format(time.RFC3339), (time.Duration(r.WallSeconds * float64(time.Second))).Round(time.Second), r.CPUs, r.LoadAverage[0], r.LoadAverage[1])

	latencyTable := func(title, scenario string) {
		var rows []result
		for _, res := range r.Results {
			if res.Scenario == scenario {
				rows = append(rows, res)
			}
		}
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(&md, "\n## %s\n\n| subject | N | per s | p50 ms | p95 ms | p99 ms | wall s | per s of each run |\n|---|---|---|---|---|---|---|---|\n", title)
		for _, res := range rows {
			runs := make([]string, len(res.Runs))
			for i, v := range res.Runs {
				runs[i] = fmt.Sprintf("%.1f", v.PerSecond)
			}
			fmt.Fprintf(&md, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", res.Subject, res.N, res.PerSecond, res.P50Millis, res.P95Millis, res.P99Millis, res.WallMillis/1000, strings.Join(runs, ", "))
		}
	}
	for _, k := range burstKinds {
		latencyTable(k.title, k.scenario)
	}
	r.costTable(&md)
	latencyTable("Drain (N approved CSRs waiting, then the subject starts; first → last issued)", "drain")
	latencyTable("Idle (one CSR at a time)", "idle")
	latencyTable("Sign subresource through kube-apiserver's aggregator (requests; 16 concurrent clients)", "sign-subresource")

	if len(r.Memory) > 0 {
		md.WriteString("\n## Memory: signet with CSRs present (for a signer name it ignores)\n\n| CSRs | process | RSS MiB | Go heap in use after GC, MiB |\n|---|---|---|---|\n")
		for _, m := range r.Memory {
			fmt.Fprintf(&md, "| %d | %s | %.1f | %.1f |\n", m.CSRs, m.Process, mib(m.RSSBytes), mib(m.HeapInuseBytes))
		}
	}
	if l := r.List; l != nil {
		fmt.Fprintf(&md, "\n## Signers list: %d Issuers in %d namespaces (one CA Secret each)\n\n", l.Issuers, l.Namespaces)
		fmt.Fprintf(&md, "Created in %.1f s; signet listed every signer %.1f s later, every one Ready %.1f s later.\n", l.CreateSeconds, l.ListedSeconds, l.ReadySeconds)
		fmt.Fprintf(&md, "signet before: %v; after: %v.\n\n| list | median ms | min ms | runs ms |\n|---|---|---|---|\n", l.SignetBefore, l.SignetAfter)
		for _, t := range l.Timings {
			runs := make([]string, len(t.RunsMillis))
			for i, v := range t.RunsMillis {
				runs[i] = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(&md, "| %s | %.0f | %.0f | %s |\n", t.What, t.MedianMillis, t.MinMillis, strings.Join(runs, ", "))
		}
	}
	if len(r.Ratios) > 0 {
		md.WriteString("\n## Ratios\n\n| ratio | value | target | met |\n|---|---|---|---|\n")
		for _, q := range r.Ratios {
			met := ""
			if q.Met != nil {
				met = map[bool]string{true: "met", false: "**NOT met**"}[*q.Met]
			}
			fmt.Fprintf(&md, "| %s | %.3f | %s | %s |\n", q.What, q.Value, q.Target, met)
		}
	}
	for _, q := range r.Ratios {
		if q.Met != nil && !*q.Met {
			fmt.Fprintf(&md, "\nNOT met: %s = %.3f (target %s)\n", q.What, q.Value, q.Target)
		}
	}
	md.WriteString("\n## Phases\n\n| phase | s |\n|---|---|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&md, "| %s | %.0f |\n", p.Name, p.Seconds)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&md, "\nFAILED: %s\n", f)
	}
	fmt.Print(md.String())

	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latency.svg"), latencyChart(r.Results), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644)
}

// costTable shows what each burst cost, per subject and scenario, with the
// per-run figures of the repeats.
func (r *report) costTable(md *strings.Builder) {
	var rows []result
	for _, res := range r.Results {
		if res.Cost != nil {
			rows = append(rows, res)
		}
	}
	if len(rows) == 0 {
		return
	}
	md.WriteString("\n## Cost of a burst: CPU-seconds per 1,000 certificates (median run; /proc/<pid>/stat over the burst) and peak RSS\n\n")
	md.WriteString("| scenario | subject | CSRs/s | subject CPU-s | kube-apiserver CPU-s | etcd CPU-s | bench CPU-s | subject peak RSS MiB | subject / kube-apiserver CPU-s of each run | kube-apiserver requests per CSR (all clients) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range rows {
		c := res.Cost
		runs := make([]string, 0, len(res.Runs))
		for _, run := range res.Runs {
			if run.Cost != nil {
				runs = append(runs, fmt.Sprintf("%.2f / %.2f", run.Cost.SubjectCPUPer1000, run.Cost.APIServerCPUPer1000))
			}
		}
		peak := "—"
		if c.SubjectPeakRSSBytes > 0 {
			peak = fmt.Sprintf("%.0f", mib(c.SubjectPeakRSSBytes))
		}
		fmt.Fprintf(md, "| %s | %s | %.1f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n", res.Scenario, res.Subject, res.PerSecond,
			c.SubjectCPUPer1000, c.APIServerCPUPer1000, c.EtcdCPUPer1000, c.BenchCPUPer1000, peak, strings.Join(runs, "; "), formatPerCSR(c.RequestsPerCSR))
	}
}

// rerender writes a run's report again from its report.json, with the
// ratios recomputed: for a change to how the report reads, without a new run.
func rerender(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	r.Ratios = ratios(&r)
	return r.write(filepath.Dir(file))
}
