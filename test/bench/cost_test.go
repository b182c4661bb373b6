package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		desc, stat string
		want       float64
		wantErr    bool
	}{
		{"plain", "1234 (kube-apiserver) S 1 1234 1234 0 -1 4194560 100 0 0 0 2500 730 0 0 20 0 12 0 100 0 0", 32.30, false},
		{"command with spaces and parentheses", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 0.10, false},
		{"no command", "1234 S 1", 0, true},
		{"too short", "1 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b 0", 0, true},
	}
	for _, tt := range tests {
		got, err := parseStatCPU(tt.stat)
		if (err != nil) != tt.wantErr || (!tt.wantErr && (got < tt.want-1e-9 || got > tt.want+1e-9)) {
			t.Errorf("%s: got %v, %v; want %v (error %v)", tt.desc, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tsignet\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
	if got, err := parseStatusKB(status, "VmHWM"); err != nil || got != 51200<<10 {
		t.Errorf("VmHWM = %d, %v; want %d", got, err, 51200<<10)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("a missing key gave no error")
	}
}

// The bench's own process: CPU time only grows, and the peak resets.
func TestOwnProcessCostIsReadable(t *testing.T) {
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	after, err := cpuSeconds(os.Getpid())
	if err != nil || after < before {
		t.Errorf("CPU seconds went from %v to %v (%v)", before, after, err)
	}
	if err := resetPeakRSS(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if peak, err := peakRSS(os.Getpid()); err != nil || peak <= 0 {
		t.Errorf("peak RSS = %d, %v", peak, err)
	}
}

func TestParseRequestTotalsSumsByVerbResourceAndSubresource(t *testing.T) {
	text := `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="certificates.k8s.io",resource="certificatesigningrequests",scope="resource",subresource="status",verb="UPDATE",version="v1"} 300
apiserver_request_total{code="409",component="apiserver",dry_run="",group="certificates.k8s.io",resource="certificatesigningrequests",scope="resource",subresource="status",verb="UPDATE",version="v1"} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="authorization.k8s.io",resource="subjectaccessreviews",scope="resource",subresource="",verb="POST",version="v1"} 1.5e+02
apiserver_request_total_other{verb="GET"} 9
`
	got, err := parseRequestTotals(text)
	if err != nil {
		t.Fatal(err)
	}
	if got["UPDATE certificatesigningrequests/status"] != 302 || got["POST subjectaccessreviews"] != 150 || len(got) != 2 {
		t.Errorf("counts = %v", got)
	}
	per := perCSR(requestCounts{"POST subjectaccessreviews": 50}, got, 100)
	if per["UPDATE certificatesigningrequests/status"] != 3.02 || per["POST subjectaccessreviews"] != 1 {
		t.Errorf("per CSR = %v", per)
	}
	if s := formatPerCSR(per); s != "3.02 UPDATE certificatesigningrequests/status, 1.00 POST subjectaccessreviews" {
		t.Errorf("formatted = %q", s)
	}
	if _, err := parseRequestTotals("# nothing\n"); err == nil {
		t.Error("metrics without apiserver_request_total gave no error")
	}
}
