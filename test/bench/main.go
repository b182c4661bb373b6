// Command bench measures signet side by side with its peers on one machine,
// in one run, and prints ratios (make bench). Scenario so far: a burst of
// approved CSRs, signet at its defaults through a namespaced CA Issuer (so the
// reference check is in the path) against the ceiling — a client that writes
// a precomputed certificate with UpdateStatus as soon as a CSR is approved,
// with the same number of writers. Both are driven by the same approval burst
// and measured the same way: approval acknowledged → certificate seen by a watch.
//
// State (issue #6 open): scenarios drain (pre-approved CSRs, subject then
// started; first→last issued), burst (approvals from 16 approvers while the
// subject runs; approval→issued) and idle (one CSR at a time) for the ceiling,
// signet and kube-controller-manager at its defaults and at client QPS 5000.
// Known problem: in a full run, kube-controller-manager at QPS 5000 has once
// issued nothing in its burst after the defaults run (alone it works; logs
// are kept in the -out directory). Still to do: signers list at 10,000
// issuers, the sign subresource, memory growth, repeats and a chart.
package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

type result struct {
	Scenario   string  `json:"scenario"`
	Subject    string  `json:"subject"`
	N          int     `json:"n"`
	PerSecond  float64 `json:"csrsPerSecond"`
	P50Millis  float64 `json:"p50Millis"`
	P95Millis  float64 `json:"p95Millis"`
	P99Millis  float64 `json:"p99Millis"`
	WallMillis float64 `json:"wallMillis"`
}

func main() {
	n := flag.Int("n", 2000, "CSRs per burst and per drain")
	idle := flag.Int("idle", 200, "CSRs signed one at a time for idle latency")
	writers := flag.Int("writers", 16, "concurrent writers of the ceiling client, and approvers of every burst")
	kcm := flag.Bool("kube-controller-manager", true, "also measure kube-controller-manager's CSR signer (needs _output/bin/kube-controller-manager)")
	only := flag.String("only", "", "measure only the subjects whose name contains this (the ceiling is always measured)")
	out := flag.String("out", "_output/bench", "directory for report.json and report.md")
	flag.Parse()
	if err := run(*n, *idle, *writers, *kcm, *only, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, idle, writers int, withKCM bool, only, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	cp, err := framework.StartControlPlane(ctx, framework.ControlPlaneOptions{})
	if err != nil {
		return err
	}
	defer cp.Stop()
	crds, err := framework.IssuerCRDDir()
	if err != nil {
		return err
	}
	if _, err := cp.InstallCRDs(ctx, crds); err != nil {
		return err
	}
	cfg := rest.CopyConfig(cp.AdminConfig)
	cfg.QPS, cfg.Burst = 5000, 10000 // the driver must never be the bottleneck
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)

	ca, err := testpki.NewCA(testpki.CAOptions{CommonName: "bench CA"})
	if err != nil {
		return err
	}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().Secrets("bench").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: "bench"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": ca.CertPEM(), "tls.key": ca.KeyPEM()}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	issuer := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
		"metadata": map[string]interface{}{"name": "ca", "namespace": "bench"}, "spec": map[string]interface{}{"ca": map[string]interface{}{"secretName": "ca"}}}}
	if _, err := dyn.Resource(issuers.IssuerGVR).Namespace("bench").Create(ctx, issuer, metav1.CreateOptions{}); err != nil {
		return err
	}
	sig, err := framework.StartSignet(ctx, cp, framework.SignetOptions{})
	if err != nil {
		return err
	}
	sig.Stop()
	request, leafPEM, err := requestAndLeaf(ca)
	if err != nil {
		return err
	}

	subjects := []*subject{ceilingSubject(kube, leafPEM, writers), signetSubject(sig)}
	if withKCM {
		for _, qps := range []int{0, 5000} {
			s, err := kcmSubject(cp, ca, outDir, qps)
			if err != nil {
				return err
			}
			subjects = append(subjects, s)
		}
	}
	var results []result
	var failures []string
	for i, s := range subjects {
		if i > 0 && only != "" && !strings.Contains(s.name, only) {
			continue
		}
		fmt.Fprintf(os.Stderr, ">> %s\n", s.name)
		rs, err := measure(ctx, kube, s, i, request, n, idle, writers)
		s.stop()
		results = append(results, rs...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "   %v\n", err)
			failures = append(failures, err.Error())
		}
	}
	if err := report(results, failures, outDir); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d subject(s) failed", len(failures))
	}
	return nil
}

// measure runs the drain, burst and idle scenarios for one subject.
func measure(ctx context.Context, kube kubernetes.Interface, s *subject, i int, request []byte, n, idle, writers int) ([]result, error) {
	var results []result
	{
		prefix := fmt.Sprintf("s%d", i)
		// Drain: n approved CSRs waiting, then the subject starts.
		names, err := createCSRs(ctx, kube, prefix+"-drain", s.signerName, request, n)
		if err != nil {
			return results, err
		}
		if _, err := approveAll(ctx, kube, names, writers); err != nil {
			return results, err
		}
		issued := watchIssued(ctx, kube, s.signerName, names)
		if err := s.start(ctx); err != nil {
			return results, err
		}
		times, err := issued.wait(10 * time.Minute)
		if err != nil {
			return results, fmt.Errorf("%s drain: %w", s.name, err)
		}
		results = append(results, drainResult(s.name, times))

		// Burst: the subject running, n CSRs approved as fast as the driver can.
		names, err = createCSRs(ctx, kube, prefix+"-burst", s.signerName, request, n)
		if err != nil {
			return results, err
		}
		issued = watchIssued(ctx, kube, s.signerName, names)
		start := time.Now()
		approvedAt, err := approveAll(ctx, kube, names, writers)
		if err != nil {
			return results, err
		}
		times, err = issued.wait(10 * time.Minute)
		if err != nil {
			return results, fmt.Errorf("%s burst: %w", s.name, err)
		}
		results = append(results, latencyResult("csr-burst", s.name, approvedAt, times, time.Since(start)))

		// Idle: one CSR at a time.
		names, err = createCSRs(ctx, kube, prefix+"-idle", s.signerName, request, idle)
		if err != nil {
			return results, err
		}
		approvedAt = map[string]time.Time{}
		times = map[string]time.Time{}
		start = time.Now()
		for _, name := range names {
			issued := watchIssued(ctx, kube, s.signerName, []string{name})
			at, err := approveAll(ctx, kube, []string{name}, 1)
			if err != nil {
				return results, err
			}
			t, err := issued.wait(time.Minute)
			if err != nil {
				return results, fmt.Errorf("%s idle: %w", s.name, err)
			}
			approvedAt[name], times[name] = at[name], t[name]
		}
		results = append(results, latencyResult("idle", s.name, approvedAt, times, time.Since(start)))
	}
	return results, nil
}

// requestAndLeaf makes one ECDSA P-256 request with client-auth usages, and
// a certificate for it signed by ca that the ceiling writes.
func requestAndLeaf(ca *testpki.CA) ([]byte, []byte, error) {
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: ca.Cert.SerialNumber, Subject: pkix.Name{CommonName: "bench"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}), nil
}

// startCeiling writes leafPEM into every approved CSR for signerName.
func startCeiling(ctx context.Context, kube kubernetes.Interface, signerName string, leafPEM []byte, writers int) func() {
	ctx, cancel := context.WithCancel(ctx)
	work := make(chan *certificatesv1.CertificateSigningRequest, 100000)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for csr := range work {
				csr.Status.Certificate = leafPEM
				if _, err := kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "ceiling:", err)
				}
			}
		})
	}
	go func() {
		defer close(work)
		w, err := kube.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=" + signerName})
		if err != nil {
			fmt.Fprintln(os.Stderr, "ceiling watch:", err)
			return
		}
		defer w.Stop()
		done := map[string]bool{}
		for e := range w.ResultChan() {
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || e.Type == watch.Deleted || done[csr.Name] || len(csr.Status.Certificate) > 0 || !approved(csr) {
				continue
			}
			done[csr.Name] = true
			work <- csr
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func approved(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved {
			return true
		}
	}
	return false
}

func createCSRs(ctx context.Context, kube kubernetes.Interface, prefix, signerName string, request []byte, n int) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: names[i]}, Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: signerName, Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}}}
		if _, err := kube.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// approveAll approves names with `workers` approvers and returns when each
// approval was acknowledged.
func approveAll(ctx context.Context, kube kubernetes.Interface, names []string, workers int) (map[string]time.Time, error) {
	var mu sync.Mutex
	at := map[string]time.Time{}
	var firstErr error
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for name := range jobs {
				for {
					csr, err := kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
					if err == nil {
						csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
							Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Bench"})
						_, err = kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, csr, metav1.UpdateOptions{})
					}
					if apierrors.IsConflict(err) {
						continue
					}
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					at[name] = time.Now()
					mu.Unlock()
					break
				}
			}
		})
	}
	for _, n := range names {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	return at, firstErr
}

type issuedWatch struct {
	mu    sync.Mutex
	times map[string]time.Time
	want  map[string]bool
	done  chan struct{}
	stop  func()
}

// watchIssued records when each of names first shows a certificate.
func watchIssued(ctx context.Context, kube kubernetes.Interface, signerName string, names []string) *issuedWatch {
	iw := &issuedWatch{times: map[string]time.Time{}, want: map[string]bool{}, done: make(chan struct{})}
	for _, n := range names {
		iw.want[n] = true
	}
	w, err := kube.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=" + signerName})
	if err != nil {
		close(iw.done)
		return iw
	}
	iw.stop = w.Stop
	go func() {
		for e := range w.ResultChan() {
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || e.Type == watch.Deleted || len(csr.Status.Certificate) == 0 || !iw.want[csr.Name] {
				continue
			}
			iw.mu.Lock()
			if _, seen := iw.times[csr.Name]; !seen {
				iw.times[csr.Name] = time.Now()
				if len(iw.times) == len(iw.want) {
					close(iw.done)
				}
			}
			iw.mu.Unlock()
		}
	}()
	return iw
}

func (iw *issuedWatch) wait(d time.Duration) (map[string]time.Time, error) {
	defer func() {
		if iw.stop != nil {
			iw.stop()
		}
	}()
	select {
	case <-iw.done:
	case <-time.After(d):
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if len(iw.times) != len(iw.want) {
		return nil, fmt.Errorf("only %d of %d issued within %s", len(iw.times), len(iw.want), d)
	}
	out := make(map[string]time.Time, len(iw.times))
	for k, v := range iw.times {
		out[k] = v
	}
	return out, nil
}

func drainResult(subject string, times map[string]time.Time) result {
	var first, last time.Time
	for _, t := range times {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	d := last.Sub(first)
	return result{Scenario: "drain", Subject: subject, N: len(times), PerSecond: float64(len(times)-1) / d.Seconds(), WallMillis: ms(d)}
}

func latencyResult(scenario, subject string, approvedAt, issuedAt map[string]time.Time, wall time.Duration) result {
	var lat []float64
	for name, t := range issuedAt {
		if a, ok := approvedAt[name]; ok {
			lat = append(lat, ms(t.Sub(a)))
		}
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))] }
	return result{Scenario: scenario, Subject: subject, N: len(issuedAt), PerSecond: float64(len(issuedAt)) / wall.Seconds(),
		P50Millis: pct(0.5), P95Millis: pct(0.95), P99Millis: pct(0.99), WallMillis: ms(wall)}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func report(results []result, failures []string, outDir string) error {
	var md strings.Builder
	fmt.Fprintf(&md, "| scenario | subject | N | CSRs/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&md, "| %s | %s | %d | %.0f | %.0f | %.0f | %.0f |\n", r.Scenario, r.Subject, r.N, r.PerSecond, r.P50Millis, r.P95Millis, r.P99Millis)
	}
	ceiling := map[string]result{}
	for _, r := range results {
		if strings.HasPrefix(r.Subject, "ceiling") {
			ceiling[r.Scenario] = r
		}
	}
	md.WriteString("\nRatios to the ceiling (throughput: higher is better; idle p99: lower is better):\n\n")
	for _, r := range results {
		c, ok := ceiling[r.Scenario]
		if !ok || strings.HasPrefix(r.Subject, "ceiling") || c.PerSecond == 0 {
			continue
		}
		if r.Scenario == "idle" {
			fmt.Fprintf(&md, "- %s, idle p99: %.2f× the ceiling's\n", r.Subject, r.P99Millis/c.P99Millis)
		} else {
			fmt.Fprintf(&md, "- %s, %s: %.2f× the ceiling's CSRs/s\n", r.Subject, r.Scenario, r.PerSecond/c.PerSecond)
		}
	}
	for _, f := range failures {
		fmt.Fprintf(&md, "\nFAILED: %s\n", f)
	}
	fmt.Print(md.String())
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(outDir, "report.json"), js, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "report.md"), []byte(md.String()), 0o644)
}
