package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/test/framework"
)

// TestLeaderFailover runs two replicas against one kube-apiserver: A leads
// and serves nothing through the aggregator, B stands by behind the
// APIService. A is SIGKILLed during a burst of approved CSRs. B must take
// the Lease over within the bound leader election allows, finish the burst
// with every CSR issued exactly once, and `kubectl get signers -A` and a
// client-go list through kube-apiserver must not fail once throughout.
func TestLeaderFailover(t *testing.T) {
	const (
		ns = "failover"
		n  = 400
	)
	leaseDuration := fastLeaseFlag(t, "lease-duration")
	retryPeriod := fastLeaseFlag(t, "retry-period")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The Issuer exists before either replica starts, so both have it cached.
	createNamespace(t, ns)
	ca := newCA(t, testpki.CAOptions{CommonName: "failover CA"})
	putCASecret(t, ns, "ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, ns, "ca", nil, caSpec("ca"))

	// Replace the shared signet by A and B; put it back last, after A's and
	// B's cleanups (LIFO) have stopped them and released the Lease.
	leases := env.kube.CoordinationV1().Leases(framework.SignetNamespace)
	env.signet.Stop()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		back, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: baseSignetArgs})
		if err != nil {
			t.Errorf("restarting the shared signet: %v", err)
			return
		}
		env.signet = back
	})
	holder := func() (string, error) {
		l, err := leases.Get(ctx, "signet", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", err
		}
		return *l.Spec.HolderIdentity, nil
	}
	// The stopped signet released the Lease, or left it to expire if it was
	// killed before: either way the next holder is A, the only candidate.
	before, err := holder()
	if err != nil {
		t.Fatal(err)
	}
	a := framework.StartSignetT(t, env.cp, framework.SignetOptions{Name: "signet-a", Unregistered: true, ExtraArgs: framework.FastLeaseArgs})
	var idA string
	eventually(t, "replica A to take the Lease", func() (bool, error) {
		h, err := holder()
		if h != "" && h != before {
			idA = h
		}
		return idA != "", err
	})
	b := framework.StartSignetT(t, env.cp, framework.SignetOptions{Name: "signet-b", ExtraArgs: framework.FastLeaseArgs})
	// B reports A as the leader once its elector has read the Lease: from
	// then on it is a candidate that times A's renewals.
	eventually(t, "replica B to see A lead", func() (bool, error) {
		log, err := os.ReadFile(b.LogPath)
		return bytes.Contains(log, []byte(idA)), err
	})
	if h, err := holder(); err != nil || h != idA {
		t.Fatalf("with B started the Lease is held by %q (err %v), want A's %q", h, err, idA)
	}
	for _, c := range []struct {
		replica string
		client  versioned.Interface
	}{{"A", versioned.NewForConfigOrDie(a.ClientConfig())}, {"B, through kube-apiserver", env.signer}} {
		eventually(t, "signer "+ns+"/ca ready in "+c.replica, func() (bool, error) {
			s, err := c.client.CertManagerV1alpha1().Signers(ns).Get(ctx, "ca", metav1.GetOptions{})
			return err == nil && meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.SignerConditionReady), err
		})
	}

	writes := watchCertificates(ctx, t)
	names := writes.createTracked(t, "issuers.cert-manager.io/"+ns+".ca", "failover", n)

	// From before the burst until every CSR is issued: the Lease's holder,
	// and the signers API through kube-apiserver, by kubectl and client-go.
	monitorCtx, stopMonitors := context.WithCancel(ctx)
	var monitors sync.WaitGroup
	defer func() {
		stopMonitors()
		monitors.Wait()
	}()
	var changes holderChanges
	monitors.Go(func() { changes.poll(monitorCtx, holder, idA, 50*time.Millisecond) })
	var viaKubectl, viaClientGo apiProbe
	monitors.Go(func() { viaKubectl.run(monitorCtx, 100*time.Millisecond, listsSigner(kubectlListsSigner, ns, "ca")) })
	monitors.Go(func() { viaClientGo.run(monitorCtx, 50*time.Millisecond, listsSigner(clientGoListsSigner, ns, "ca")) })

	// Approve as a burst from several goroutines; kill A while approvals are
	// still arriving.
	burstStart := time.Now()
	jobs := make(chan string)
	approveErrs := make(chan error, n)
	var approved atomic.Int32
	var approvers sync.WaitGroup
	for range 8 {
		approvers.Go(func() {
			for name := range jobs {
				if err := trySetCondition(name, certificatesv1.CertificateApproved, t.Name()); err != nil {
					approveErrs <- fmt.Errorf("approving %s: %w", name, err)
					continue
				}
				approved.Add(1)
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, name := range names {
			select {
			case jobs <- name:
			case <-ctx.Done():
				return
			}
		}
	}()
	for writes.issued() < n/4 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	killedAt := time.Now()
	a.Kill()
	issuedAtKill, approvedAtKill := writes.issued(), approved.Load()

	approvers.Wait()
	close(approveErrs)
	for err := range approveErrs {
		t.Error(err)
	}
	for writes.issued() < n && ctx.Err() == nil && time.Since(killedAt) < 2*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	doneAt := time.Now()
	stopMonitors()
	monitors.Wait()

	// Takeover bound, from client-go's LeaderElector: B polls the Lease every
	// RetryPeriod, jittered up to RetryPeriod×(1+JitterFactor) and sliding
	// (counted from the end of each request). B times A's lease from when it
	// first read A's last renewal, not from the renewTime written, so from at
	// most one poll after the kill; it treats the lease as A's for
	// LeaseDuration from then, and takes it on its first poll after that.
	// Hence LeaseDuration + 2×RetryPeriod×(1+JitterFactor) (6.2 s with
	// FastLeaseArgs) plus request latencies. RenewDeadline plays no part: it
	// only bounds how long a live leader keeps retrying its renewals.
	poll := time.Duration(float64(retryPeriod) * (1 + leaderelection.JitterFactor))
	bound := leaseDuration + 2*poll
	const slack = time.Second // API round trips on a loaded 2-core machine
	hs := changes.get()
	if len(hs) == 0 {
		t.Fatalf("the Lease never left A (%q) after the kill", idA)
	}
	if hs[0].at.Before(killedAt) {
		t.Errorf("the Lease went from A to %q %s before A was killed", hs[0].holder, killedAt.Sub(hs[0].at))
	}
	if hs[0].holder == "" {
		t.Errorf("the Lease was released, not taken over: %v", hs)
	}
	if len(hs) > 1 {
		t.Errorf("the Lease changed hands %d times, want once (A to B): %v", len(hs), hs)
	}
	takeover := hs[0].at.Sub(killedAt)
	if takeover > bound+slack {
		t.Errorf("B took the Lease %s after the kill, want ≤ %s (LeaseDuration %s + 2×%s polls) + %s", takeover.Round(time.Millisecond), bound, leaseDuration, poll, slack)
	}

	// Issued exactly once: confirm from the API, not only from the watch.
	if missing := writes.confirmFromAPI(ctx, t, names); missing > 0 {
		t.Errorf("%d of %d CSRs never issued", missing, n)
	}
	if changed := writes.changedNames(); len(changed) > 0 {
		t.Errorf("certificates changed after first written (issued twice): %v", changed)
	}
	if err := writes.watchErr(); err != nil {
		t.Errorf("the CSR watch ended early: %v", err)
	}
	byB, err := issuedBy(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	// A's writes the watch had not delivered at the kill make B's share
	// smaller than n - issuedAtKill, never larger.
	if byB == 0 || byB > n-issuedAtKill {
		t.Errorf("B issued %d certificates, want 1..%d (%d issued when A was killed)", byB, n-issuedAtKill, issuedAtKill)
	}

	t.Logf("takeover %s after the kill (bound %s + %s slack); Lease holders after A: %v",
		takeover.Round(time.Millisecond), bound, slack, hs)
	t.Logf("burst of %d: %d approved and %d issued when A was killed, %d issued by B; all issued %s after the first approval, %s after the kill",
		n, approvedAtKill, issuedAtKill, byB, doneAt.Sub(burstStart).Round(time.Millisecond), doneAt.Sub(killedAt).Round(time.Millisecond))
	for _, p := range []struct {
		what  string
		probe *apiProbe
	}{{"kubectl get signers -A", &viaKubectl}, {"client-go list signers", &viaClientGo}} {
		if requests := p.probe.report(t, p.what, "with B behind the APIService"); requests == 0 {
			t.Errorf("%s never ran", p.what)
		}
	}
}

// fastLeaseFlag returns the value of --leader-elect-<name> in
// framework.FastLeaseArgs, the flags both replicas run with.
func fastLeaseFlag(t *testing.T, name string) time.Duration {
	t.Helper()
	for _, arg := range framework.FastLeaseArgs {
		if v, ok := strings.CutPrefix(arg, "--leader-elect-"+name+"="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %v", arg, err)
			}
			return d
		}
	}
	t.Fatalf("framework.FastLeaseArgs has no --leader-elect-%s", name)
	return 0
}

// holderChange is a Lease holder seen for the first time.
type holderChange struct {
	at     time.Time
	holder string
}

func (h holderChange) String() string {
	return fmt.Sprintf("%s at %s", h.holder, h.at.Format("15:04:05.000"))
}

// holderChanges records each change of the Lease's holder.
type holderChanges struct {
	mu      sync.Mutex
	changes []holderChange
}

// poll reads the holder every interval until ctx ends, starting from last.
func (hc *holderChanges) poll(ctx context.Context, holder func() (string, error), last string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if h, err := holder(); err == nil && h != last {
			last = h
			hc.mu.Lock()
			hc.changes = append(hc.changes, holderChange{at: time.Now(), holder: h})
			hc.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (hc *holderChanges) get() []holderChange {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return append([]holderChange(nil), hc.changes...)
}

// apiProbe counts the requests and failures of one way of asking the API.
type apiProbe struct {
	mu                 sync.Mutex
	requests, failures int
	slowest            time.Duration
	errs               []string // the first few
}

// run calls request every interval until ctx ends. A request under way when
// ctx ends still runs to its end (30 s at most) and counts.
func (p *apiProbe) run(ctx context.Context, interval time.Duration, request func(context.Context) error) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		start := time.Now()
		err := request(rctx)
		took := time.Since(start)
		cancel()
		p.mu.Lock()
		p.requests++
		p.slowest = max(p.slowest, took)
		if err != nil {
			p.failures++
			if len(p.errs) < 5 {
				p.errs = append(p.errs, fmt.Sprintf("%s: %v", start.Format("15:04:05.000"), err))
			}
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

func (p *apiProbe) get() (requests, failures int, slowest time.Duration, errs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests, p.failures, p.slowest, append([]string(nil), p.errs...)
}

// kubectlListsSigner runs `kubectl get signers -A` through kube-apiserver
// and fails unless it has a row for ns/name.
func kubectlListsSigner(ctx context.Context, ns, name string) error {
	out, stderr, err := env.cp.Kubectl(ctx, "get", "signers", "-A")
	if err != nil {
		return fmt.Errorf("%v: %s", err, stderr)
	}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == ns && f[1] == name {
			return nil
		}
	}
	return fmt.Errorf("no row for %s/%s in:\n%s", ns, name, out)
}

// clientGoListsSigner lists signers in all namespaces with the generated
// clientset through kube-apiserver and fails unless ns/name is among them.
func clientGoListsSigner(ctx context.Context, ns, name string) error {
	list, err := env.signer.CertManagerV1alpha1().Signers("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range list.Items {
		if s.Namespace == ns && s.Name == name {
			return nil
		}
	}
	return fmt.Errorf("%d signers, none %s/%s", len(list.Items), ns, name)
}

// listsSigner binds a lister to one signer, for apiProbe.run.
func listsSigner(lists func(ctx context.Context, ns, name string) error, ns, name string) func(context.Context) error {
	return func(ctx context.Context) error { return lists(ctx, ns, name) }
}

// report logs what p saw, fails t if any request failed (during says when
// they ran), and returns how many requests there were.
func (p *apiProbe) report(t *testing.T, what, during string) (requests int) {
	t.Helper()
	requests, failures, slowest, errs := p.get()
	t.Logf("%s: %d requests, %d failed, slowest %s", what, requests, failures, slowest.Round(time.Millisecond))
	if failures > 0 {
		t.Errorf("%s failed %d of %d times %s; first errors: %v", what, failures, requests, during, errs)
	}
	return requests
}

// issuedBy sums a replica's signet_csr_handled_total{result="issued"}: the
// certificates this process wrote.
func issuedBy(ctx context.Context, s *framework.Signet) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MetricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, fmt.Errorf("%s: %s: %s", s.MetricsURL, resp.Status, body)
	}
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "signet_csr_handled_total{") || !strings.Contains(line, `result="issued"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", s.MetricsURL, line, err)
		}
		total += int(v)
	}
	return total, sc.Err()
}
