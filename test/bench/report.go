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
	Subject  string `json:"subject"`
	N        int    `json:"n"`
	// PerSecond is CSRs (or, for sign-subresource, requests) per second.
	PerSecond  float64 `json:"perSecond"`
	P50Millis  float64 `json:"p50Millis"`
	P95Millis  float64 `json:"p95Millis"`
	P99Millis  float64 `json:"p99Millis"`
	WallMillis float64 `json:"wallMillis"`
	// Runs are the per-second figures of every repeat of a burst; the
	// result is the run with the median one.
	Runs []float64 `json:"runs,omitempty"`
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

// find returns the result of scenario whose subject starts with subject.
func (r *report) find(scenario, subject string) (result, bool) {
	for _, res := range r.Results {
		if res.Scenario == scenario && strings.HasPrefix(res.Subject, subject) {
			return res, true
		}
	}
	return result{}, false
}

const (
	ceilingName = "ceiling"
	signetName  = "signet"
	kcmDefaults = "kube-controller-manager (defaults)"
	kcmQPS      = "kube-controller-manager (client QPS"
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

	for _, sc := range []struct{ scenario, label string }{{"csr-burst", "P-256"}, {"csr-burst-rsa2048", "RSA-2048"}} {
		s, _ := r.find(sc.scenario, signetName)
		c, _ := r.find(sc.scenario, ceilingName)
		kd, _ := r.find(sc.scenario, kcmDefaults)
		kq, _ := r.find(sc.scenario, kcmQPS)
		add("burst CSRs/s "+sc.label+": signet / ceiling", s.PerSecond, c.PerSecond, "≥ 0.9", atLeast(0.9))
		add("burst CSRs/s "+sc.label+": signet / kube-controller-manager (defaults)", s.PerSecond, kd.PerSecond, "", nil)
		add("burst CSRs/s "+sc.label+": signet / kube-controller-manager (QPS 5000)", s.PerSecond, kq.PerSecond, "", nil)
	}
	s, _ := r.find("drain", signetName)
	c, _ := r.find("drain", ceilingName)
	add("drain CSRs/s: signet / ceiling", s.PerSecond, c.PerSecond, "", nil)
	s, _ = r.find("idle", signetName)
	c, _ = r.find("idle", ceilingName)
	add("idle p99: signet / ceiling", s.P99Millis, c.P99Millis, "≤ 1.5", atMost(1.5))

	if r.List != nil && len(r.List.Timings) == 6 {
		t := r.List.Timings
		add("list time (median): kubectl get signers -A / kubectl get issuers -A", t[0].MedianMillis, t[1].MedianMillis, "≤ 1.0", atMost(1.0))
		add("list time (median): client-go signers / dynamic issuers", t[2].MedianMillis, t[3].MedianMillis, "≤ 1.0", atMost(1.0))
		add("list time (median): GET signers / GET issuers, bytes only", t[4].MedianMillis, t[5].MedianMillis, "", nil)
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
				runs[i] = fmt.Sprintf("%.1f", v)
			}
			fmt.Fprintf(&md, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", res.Subject, res.N, res.PerSecond, res.P50Millis, res.P95Millis, res.P99Millis, res.WallMillis/1000, strings.Join(runs, ", "))
		}
	}
	latencyTable("CSR burst, ECDSA P-256 requester keys (16 approvers; approval → certificate seen)", "csr-burst")
	latencyTable("CSR burst, RSA-2048 requester keys (CA ECDSA P-256)", "csr-burst-rsa2048")
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
				met = map[bool]string{true: "yes", false: "**no**"}[*q.Met]
			}
			fmt.Fprintf(&md, "| %s | %.2f | %s | %s |\n", q.What, q.Value, q.Target, met)
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
