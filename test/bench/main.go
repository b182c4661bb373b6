// Command bench measures signet side by side with its peers on one machine,
// in one run, and prints ratios (make bench). Scenario so far: a burst of
// approved CSRs, signet at its defaults through a namespaced CA Issuer (so the
// reference check is in the path) against the ceiling — a client that writes
// a precomputed certificate with UpdateStatus as soon as a CSR is approved,
// with the same number of writers. Both are driven by the same approval burst
// and measured the same way: approval acknowledged → certificate seen by a watch.
//
// State (first cut, issue #6 open): on a 2-core machine this burst is bounded
// by the approval driver (16 approvers, a GET and an UpdateApproval each), so
// throughput does not yet separate the subjects — a first run gave the ceiling
// 183/s and signet 256/s with the ceiling run first and other tests running.
// Still to do: measure the drain of pre-approved CSRs as well, alternate and
// repeat subjects, add kube-controller-manager, idle latency, signers list,
// sign subresource and memory scenarios, and a chart.
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
	n := flag.Int("n", 2000, "CSRs per burst")
	writers := flag.Int("writers", 16, "concurrent writers of the ceiling client, and approvers of every burst")
	out := flag.String("out", "_output/bench", "directory for report.json and report.md")
	flag.Parse()
	if err := run(*n, *writers, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, writers int, outDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
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
	if _, err := framework.StartSignet(ctx, cp, framework.SignetOptions{}); err != nil {
		return err
	}
	request, leafPEM, err := requestAndLeaf(ca)
	if err != nil {
		return err
	}

	var results []result
	// The ceiling: a trivial controller, no signing at all.
	stopCeiling := startCeiling(ctx, kube, "bench.example.com/ceiling", leafPEM, writers)
	r, err := burst(ctx, kube, "ceiling", "bench.example.com/ceiling", request, n, writers)
	stopCeiling()
	if err != nil {
		return err
	}
	results = append(results, r)
	r, err = burst(ctx, kube, "signet (defaults, namespaced CA Issuer)", "issuers.cert-manager.io/bench.ca", request, n, writers)
	if err != nil {
		return err
	}
	results = append(results, r)
	return report(results, outDir)
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

// burst creates n CSRs, approves them with `writers` approvers as fast as the
// API allows, and measures approval → certificate seen, per CSR.
func burst(ctx context.Context, kube kubernetes.Interface, subject, signerName string, request []byte, n, writers int) (result, error) {
	prefix := strings.NewReplacer(".", "-", "/", "-").Replace(signerName)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: names[i]}, Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: signerName, Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}}}
		if _, err := kube.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			return result{}, err
		}
	}
	var mu sync.Mutex
	approvedAt, issuedAt := map[string]time.Time{}, map[string]time.Time{}
	w, err := kube.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=" + signerName})
	if err != nil {
		return result{}, err
	}
	defer w.Stop()
	allIssued := make(chan struct{})
	go func() {
		for e := range w.ResultChan() {
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || len(csr.Status.Certificate) == 0 {
				continue
			}
			mu.Lock()
			if _, seen := issuedAt[csr.Name]; !seen {
				issuedAt[csr.Name] = time.Now()
				if len(issuedAt) == n {
					close(allIssued)
				}
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for name := range jobs {
				csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name}}
				for {
					cur, err := kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						break
					}
					csr = cur
					csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Bench"})
					t0 := time.Now()
					if _, err := kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, csr, metav1.UpdateOptions{}); err == nil {
						mu.Lock()
						approvedAt[name] = t0
						mu.Unlock()
						break
					} else if !apierrors.IsConflict(err) {
						break
					}
				}
			}
		})
	}
	for _, name := range names {
		jobs <- name
	}
	close(jobs)
	wg.Wait()
	select {
	case <-allIssued:
	case <-time.After(10 * time.Minute):
		return result{}, fmt.Errorf("%s: only %d of %d issued after 10 minutes", subject, len(issuedAt), n)
	}
	wall := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	var lat []float64
	var first, last time.Time
	for name, t := range issuedAt {
		if a, ok := approvedAt[name]; ok {
			lat = append(lat, float64(t.Sub(a))/float64(time.Millisecond))
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))] }
	return result{Scenario: "csr-burst", Subject: subject, N: n, PerSecond: float64(n) / wall.Seconds(),
		P50Millis: pct(0.5), P95Millis: pct(0.95), P99Millis: pct(0.99), WallMillis: float64(wall) / float64(time.Millisecond)}, nil
}

func report(results []result, outDir string) error {
	var md strings.Builder
	fmt.Fprintf(&md, "| scenario | subject | N | CSRs/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&md, "| %s | %s | %d | %.0f | %.0f | %.0f | %.0f |\n", r.Scenario, r.Subject, r.N, r.PerSecond, r.P50Millis, r.P95Millis, r.P99Millis)
	}
	if len(results) == 2 && results[0].PerSecond > 0 {
		fmt.Fprintf(&md, "\nsignet / ceiling throughput: %.2f×\n", results[1].PerSecond/results[0].PerSecond)
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
