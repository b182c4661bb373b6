package main

import (
	"os"
	"strings"
	"testing"
)

func TestRatiosCompareSignetWithTheCeilingOfItsScenario(t *testing.T) {
	r := &report{Results: []result{
		{Scenario: "approvals-only", SubjectKey: keyNone, Cost: &cost{APIServerCPUPer1000: 2}},
		{Scenario: "csr-burst", SubjectKey: keyCeiling, PerSecond: 500, Cost: &cost{SubjectCPUPer1000: 0.5, APIServerCPUPer1000: 4, EtcdCPUPer1000: 1, BenchCPUPer1000: 0.5}},
		{Scenario: "csr-burst", SubjectKey: keySignet, PerSecond: 400, Cost: &cost{SubjectCPUPer1000: 1, APIServerCPUPer1000: 4.2, EtcdCPUPer1000: 1, BenchCPUPer1000: 0.5}},
		{Scenario: "csr-burst", SubjectKey: keyKCMQPS, PerSecond: 300, Cost: &cost{SubjectCPUPer1000: 1.25, APIServerCPUPer1000: 5}},
		{Scenario: "csr-burst-distinct", SubjectKey: keyCeilingSAR, PerSecond: 300, Cost: &cost{SubjectCPUPer1000: 0.6, APIServerCPUPer1000: 5}},
		{Scenario: "csr-burst-distinct", SubjectKey: keySignet, PerSecond: 290, Cost: &cost{SubjectCPUPer1000: 1.1, APIServerCPUPer1000: 6}},
	}}
	got := map[string]ratio{}
	for _, q := range ratios(r) {
		got[q.What] = q
	}
	for _, want := range []struct {
		what  string
		value float64
		met   string // "", "met", "not met"
	}{
		{"burst CSRs/s (one requester, P-256): signet / ceiling", 0.8, "not met"},
		{"burst CSRs/s (distinct requesters): signet / SubjectAccessReview ceiling", 290.0 / 300, "met"},
		{"CPU-s per 1,000 certificates (one requester, P-256): signet / kube-controller-manager (QPS 5000)", 0.8, "met"},
		{"kube-apiserver CPU-s per 1,000 certificates (one requester, P-256): with signet / with the ceiling", 1.05, "met"},
		{"kube-apiserver CPU-s per 1,000 certificates (distinct requesters): with signet / with the SubjectAccessReview ceiling", 1.2, "not met"},
		{"kube-apiserver CPU-s per 1,000 certificates (one requester, P-256), less the approvals-only driving: with signet / with the ceiling", 1.1, ""},
		{"burst CSRs/s (one requester, P-256) if CPU alone decided: Σ CPU-s per 1,000 with the ceiling / with signet", 6.0 / 6.7, ""},
	} {
		q, ok := got[want.what]
		if !ok {
			t.Errorf("no ratio %q", want.what)
			continue
		}
		met := ""
		if q.Met != nil {
			met = map[bool]string{true: "met", false: "not met"}[*q.Met]
		}
		if q.Value < want.value-1e-9 || q.Value > want.value+1e-9 || met != want.met {
			t.Errorf("%s = %.4f (%s), want %.4f (%s)", want.what, q.Value, met, want.value, want.met)
		}
	}
	// kube-controller-manager checks no reference: no target in the distinct scenario.
	if _, ok := got["CPU-s per 1,000 certificates (distinct requesters): signet / kube-controller-manager (QPS 5000)"]; ok {
		t.Error("a CPU ratio against kube-controller-manager without its distinct-requester figures")
	}

	r.Ratios = ratios(r)
	dir := t.TempDir()
	stdout := os.Stdout
	os.Stdout, _ = os.Open(os.DevNull)
	err := r.write(dir)
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(dir + "/report.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NOT met: burst CSRs/s (one requester, P-256): signet / ceiling = 0.800 (target ≥ 0.9)", "## Cost of a burst"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}
