// Command bench measures signet side by side with its peers on one machine,
// in one run, and prints ratios (make bench). Scenarios (-scenarios):
//
//   - drain: N approved CSRs waiting, then the subject starts; first → last issued.
//   - burst: 16 approvers approve N CSRs while the subject runs; approval →
//     certificate seen by a watch. Once with ECDSA P-256 requester keys, once
//     with RSA-2048 (the CA is ECDSA P-256 throughout). Every CSR has the
//     same requester (the admin).
//   - distinct: the P-256 burst with a requester of its own for every CSR
//     (impersonated users of one group the bench lets create CSRs and
//     reference the bench signer), so every CSR needs its own
//     SubjectAccessReview.
//   - idle: one CSR at a time.
//   - sign: the synchronous signers/<name>/sign subresource through
//     kube-apiserver's aggregator, next to a get of the same signer.
//   - memory: signet's RSS and Go heap with 0, 10k and 50k CSRs present.
//   - list: 10,000 Issuers in 1,000 namespaces; listing their signers against
//     listing the Issuers themselves, in pages of 500 both.
//
// The CSR subjects are two ceilings (ceiling.go: the least work a signer can
// do, in a process of their own) — writing a precomputed certificate for
// one requester's CSRs, and one SubjectAccessReview per CSR plus that write
// for distinct requesters — signet at its defaults through a namespaced CA
// Issuer (so the reference check is in the path), and kube-controller-manager's
// CSR signer at its defaults and at client QPS 5000. Every subject is the
// admin towards kube-apiserver and talks protobuf. For every burst the report
// has the CPU-seconds per 1,000 certificates of the subject, kube-apiserver
// and etcd (/proc/<pid>/stat over the burst) and the subject's peak RSS
// (VmHWM, reset before the burst); an approvals-only burst with no signer
// gives the part of kube-apiserver's CPU that is the bench's own driving.
//
// Known problem: in a full run, kube-controller-manager at QPS 5000 has once
// issued nothing in its burst after the defaults run (alone it works; logs
// are kept in the -out directory).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

var allScenarios = []string{"drain", "burst", "distinct", "idle", "sign", "memory", "list"}

type options struct {
	n, idle, writers int
	burstRepeat      int
	kcm              bool
	only             string
	out              string
	scenarios        map[string]bool
	memoryCSRs       []int
	listIssuers      int
	listRepeat       int
	pprof            bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 2000, "CSRs per burst and per drain, and requests of the sign scenario")
	flag.IntVar(&o.burstRepeat, "burst-repeat", 3, "bursts of each key type per subject; the median is reported")
	flag.IntVar(&o.idle, "idle", 200, "CSRs signed one at a time for idle latency")
	flag.IntVar(&o.writers, "writers", 16, "concurrent writers of the ceiling client, approvers of every burst, clients of the sign scenario, and creators of test objects")
	flag.BoolVar(&o.kcm, "kube-controller-manager", true, "also measure kube-controller-manager's CSR signer (needs _output/bin/kube-controller-manager)")
	flag.StringVar(&o.only, "only", "", "measure only the CSR subjects whose name contains this (the ceilings are always measured)")
	flag.StringVar(&o.out, "out", "_output/bench", "directory for report.json, report.md, latency.svg, profiles and logs")
	scenarios := flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run, of "+strings.Join(allScenarios, ","))
	memoryCSRs := flag.String("memory-csrs", "10000,50000", "comma-separated numbers of CSRs present for the memory scenario (0 is always measured)")
	flag.IntVar(&o.listIssuers, "list-issuers", 10000, "Issuers for the list scenario, 10 per namespace")
	flag.IntVar(&o.listRepeat, "list-repeat", 5, "timed runs of each list, after one warm-up run")
	flag.BoolVar(&o.pprof, "pprof", false, "save to -out 10 s CPU profiles of signet and of kube-apiserver during the first burst of each kind of every subject, and a heap profile of signet with the list scenario's Issuers")
	render := flag.String("render", "", "only write report.md, latency.svg and report.json again from this report.json (ratios recomputed), into its directory")
	if len(os.Args) > 1 && os.Args[1] == ceilingCommandName {
		if err := ceilingMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench ceiling:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()

	if *render != "" {
		if err := rerender(*render); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (want some of %s)\n", s, strings.Join(allScenarios, ","))
			os.Exit(2)
		}
		o.scenarios[s] = true
	}
	for _, s := range strings.Split(*memoryCSRs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || (len(o.memoryCSRs) > 0 && n <= o.memoryCSRs[len(o.memoryCSRs)-1]) {
			fmt.Fprintf(os.Stderr, "bench: -memory-csrs %q: want increasing non-negative numbers\n", *memoryCSRs)
			os.Exit(2)
		}
		o.memoryCSRs = append(o.memoryCSRs, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is what every scenario works with.
type bench struct {
	cp   *framework.ControlPlane
	sig  *framework.Signet
	cfg  *rest.Config // the admin's, unthrottled
	kube kubernetes.Interface
	// raw reads kube-apiserver's /metrics (JSON accept: text exposition).
	raw rest.Interface
	dyn dynamic.Interface
	ca  *testpki.CA
	// keys are the requester keys: [0] ECDSA P-256, used by every scenario;
	// [1] RSA-2048, for a second burst.
	keys    []requestKey
	writers int
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "   "+format+"\n", args...)
}

func run(o options) error {
	rep := &report{Command: commandLine(), Started: time.Now(), CPUs: runtime.NumCPU(), LoadAverage: [2]string{loadAverage()}}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()

	setup := time.Now()
	fmt.Fprintln(os.Stderr, ">> control plane, bench Issuer, signet")
	b, err := start(ctx, o.writers)
	if err != nil {
		return err
	}
	defer b.cp.Stop()
	rep.phase("setup", setup)

	csrScenarios := o.scenarios["drain"] || o.scenarios["burst"] || o.scenarios["distinct"] || o.scenarios["idle"]
	if csrScenarios {
		subjects, err := b.subjects(o)
		if err != nil {
			return err
		}
		if o.scenarios["burst"] || o.scenarios["distinct"] {
			t := time.Now()
			fmt.Fprintln(os.Stderr, ">> approvals only, no signer")
			r, err := b.approvalsOnly(ctx, o)
			if err == nil {
				rep.Results = append(rep.Results, r)
			}
			rep.fail(err)
			rep.phase("approvals only", t)
		}
		for i, s := range subjects {
			if o.only != "" && s.key != keyCeiling && s.key != keyCeilingSAR && !strings.Contains(s.name, o.only) {
				continue
			}
			if !s.takesPart(o.scenarios) {
				continue
			}
			t := time.Now()
			fmt.Fprintf(os.Stderr, ">> %s\n", s.name)
			group := fmt.Sprintf("s%d", i)
			rs, err := b.measure(ctx, s, group, o)
			s.stop()
			rep.Results = append(rep.Results, rs...)
			rep.fail(err)
			// Every subject starts with no CSRs left by the ones before.
			_, err = deleteCSRs(ctx, b.kube, group, o.writers)
			rep.fail(err)
			rep.phase(s.name, t)
		}
	}
	if o.scenarios["sign"] {
		t := time.Now()
		fmt.Fprintln(os.Stderr, ">> sign subresource")
		err := restartSignet(ctx, b.kube, b.sig)
		if err == nil {
			var rs []result
			rs, err = b.signScenario(ctx, o.n)
			rep.Results = append(rep.Results, rs...)
		}
		rep.fail(err)
		rep.phase("sign", t)
	}
	if o.scenarios["memory"] {
		t := time.Now()
		fmt.Fprintln(os.Stderr, ">> memory")
		err := restartSignet(ctx, b.kube, b.sig)
		if err == nil {
			rep.Memory, err = b.memoryScenario(ctx, o.memoryCSRs)
		}
		rep.fail(err)
		rep.phase("memory", t)
	}
	// Last: its 1,000 namespaces stay (no namespace controller runs here).
	if o.scenarios["list"] {
		t := time.Now()
		fmt.Fprintln(os.Stderr, ">> signers list")
		heapProfileTo := ""
		if o.pprof {
			heapProfileTo = filepath.Join(o.out, "signet-list-heap.pprof")
		}
		rep.List, err = b.listScenario(ctx, o.listIssuers, o.listRepeat, heapProfileTo)
		rep.fail(err)
		rep.phase("list", t)
	}

	rep.WallSeconds = time.Since(rep.Started).Seconds()
	rep.LoadAverage[1] = loadAverage()
	rep.Ratios = ratios(rep)
	if err := rep.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "total wall time %s\n", since(rep.Started))
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d scenario(s) failed", len(rep.Failures))
	}
	return nil
}

// start brings up the control plane, the Issuer CRDs, the namespace bench with
// a CA Secret and Issuer ca, and signet (stopped again: subjects start it),
// and makes the requester keys.
func start(ctx context.Context, writers int) (*bench, error) {
	cp, err := framework.StartControlPlane(ctx, framework.ControlPlaneOptions{})
	if err != nil {
		return nil, err
	}
	b := &bench{cp: cp, writers: writers}
	if err := b.setUp(ctx); err != nil {
		cp.Stop()
		return nil, err
	}
	return b, nil
}

func (b *bench) setUp(ctx context.Context) error {
	crds, err := framework.IssuerCRDDir()
	if err != nil {
		return err
	}
	if _, err := b.cp.InstallCRDs(ctx, crds); err != nil {
		return err
	}
	b.cfg = rest.CopyConfig(b.cp.AdminConfig)
	b.cfg.QPS, b.cfg.Burst = 5000, 10000 // the driver must never be the bottleneck
	// The driver talks protobuf too: its share of kube-apiserver's work is
	// the same for every subject, and should be no larger than it must.
	b.kube = kubernetes.NewForConfigOrDie(protobufConfig(b.cfg))
	b.dyn = dynamic.NewForConfigOrDie(b.cfg)
	b.raw = kubernetes.NewForConfigOrDie(b.cfg).Discovery().RESTClient()

	if b.ca, err = testpki.NewCA(testpki.CAOptions{CommonName: "bench CA"}); err != nil {
		return err
	}
	for _, k := range []struct {
		name string
		typ  testpki.KeyType
	}{{"ECDSA P-256", testpki.ECDSAP256}, {"RSA-2048", testpki.RSA2048}} {
		key, err := newRequestKey(k.name, k.typ, b.ca)
		if err != nil {
			return err
		}
		b.keys = append(b.keys, key)
	}
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.kube.CoreV1().Secrets("bench").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: "bench"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": b.ca.CertPEM(), "tls.key": b.ca.KeyPEM()}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.dyn.Resource(issuers.IssuerGVR).Namespace("bench").Create(ctx, caIssuer("bench", "ca"), metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := b.allowRequesters(ctx); err != nil {
		return err
	}
	if b.sig, err = framework.StartSignet(ctx, b.cp, framework.SignetOptions{}); err != nil {
		return err
	}
	b.sig.Stop()
	return nil
}

// subjects are the CSR subjects in the order they are measured.
func (b *bench) subjects(o options) ([]*subject, error) {
	leaves, err := b.writeLeaves(o.out)
	if err != nil {
		return nil, err
	}
	var subjects []*subject
	for _, sar := range []bool{false, true} {
		s, err := b.ceilingSubject(leaves, o.out, sar)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, s)
	}
	subjects = append(subjects, signetSubject(b.sig, o.pprof))
	if o.kcm {
		for _, qps := range []int{0, 5000} {
			s, err := kcmSubject(b.cp, b.ca, o.out, qps)
			if err != nil {
				return nil, err
			}
			subjects = append(subjects, s)
		}
	}
	return subjects, nil
}

// takesPart says whether s has anything to do in the selected scenarios.
func (s *subject) takesPart(scenarios map[string]bool) bool {
	if s.drainIdle && (scenarios["drain"] || scenarios["idle"]) {
		return true
	}
	for _, k := range burstKinds {
		if k.selected(scenarios) && s.runs(k.scenario) {
			return true
		}
	}
	return false
}

// processes are the pids whose CPU a burst of s is charged with.
func (b *bench) processes(s *subject) processes {
	p := processes{apiserver: b.cp.APIServerPid(), etcd: b.cp.EtcdPid(), bench: os.Getpid()}
	if s != nil && s.pid != nil {
		p.subject = s.pid()
	}
	return p
}

// measure runs the drain, burst and idle scenarios (those selected) for one
// subject, with CSRs labelled group.
func (b *bench) measure(ctx context.Context, s *subject, group string, o options) ([]result, error) {
	var results []result
	p256 := b.keys[0]
	if o.scenarios["drain"] && s.drainIdle {
		// n approved CSRs waiting, then the subject starts.
		names, err := createCSRs(ctx, b.kube, group, group+"-drain", s.signerName, p256.request, o.n, o.writers, false)
		if err != nil {
			return results, err
		}
		if _, err := approveAll(ctx, b.kube, names, o.writers); err != nil {
			return results, err
		}
		issued := watchIssued(ctx, b.kube, s.signerName, names)
		if err := s.start(ctx); err != nil {
			return results, err
		}
		times, err := issued.wait(10 * time.Minute)
		if err != nil {
			return results, fmt.Errorf("%s drain: %w", s.name, err)
		}
		results = append(results, drainResult(s, times))
	} else if err := s.start(ctx); err != nil {
		return results, err
	}

	for _, kind := range burstKinds {
		if !kind.selected(o.scenarios) || !s.runs(kind.scenario) {
			continue
		}
		r, err := b.burst(ctx, s, group, kind, o)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}

	if o.scenarios["idle"] && s.drainIdle {
		names, err := createCSRs(ctx, b.kube, group, group+"-idle", s.signerName, p256.request, o.idle, o.writers, false)
		if err != nil {
			return results, err
		}
		approvedAt := map[string]time.Time{}
		times := map[string]time.Time{}
		start := time.Now()
		for _, name := range names {
			issued := watchIssued(ctx, b.kube, s.signerName, []string{name})
			at, err := approveAll(ctx, b.kube, []string{name}, 1)
			if err != nil {
				return results, err
			}
			t, err := issued.wait(time.Minute)
			if err != nil {
				return results, fmt.Errorf("%s idle: %w", s.name, err)
			}
			approvedAt[name], times[name] = at[name], t[name]
		}
		results = append(results, latencyResult("idle", s, approvedAt, times, time.Since(start)))
	}
	return results, nil
}

// burst approves n CSRs of one kind as fast as the driver can while s runs,
// burstRepeat times, and returns the run with the median throughput with
// what it cost. Repeats, because one burst on a shared 2-core machine
// varies by ±10%; a subject that needs more than 30 s for one burst is not
// repeated: it is far off.
func (b *bench) burst(ctx context.Context, s *subject, group string, kind burstKind, o options) (result, error) {
	key := b.keys[kind.key]
	var runs []result
	for r := 0; r < max(o.burstRepeat, 1); r++ {
		names, err := createCSRs(ctx, b.kube, group, fmt.Sprintf("%s-%s-%d", group, kind.scenario, r), s.signerName, key.request, o.n, o.writers, kind.distinct)
		if err != nil {
			return result{}, err
		}
		// With -pprof, the first burst of each kind is profiled: the
		// subject (signet only) and kube-apiserver, to see what each CPU
		// second of theirs goes to.
		var profiles []chan error
		if o.pprof && r == 0 {
			profile := func(f func(ctx context.Context, file string) error, who string) {
				done := make(chan error, 1)
				file := filepath.Join(o.out, fmt.Sprintf("%s-%s-cpu.pprof", who, kind.scenario))
				go func() { done <- f(ctx, file) }()
				profiles = append(profiles, done)
			}
			if s.profile != nil {
				profile(s.profile, s.key)
			}
			profile(b.apiserverProfile, "kube-apiserver-with-"+s.key)
		}
		issued := watchIssued(ctx, b.kube, s.signerName, names)
		reqBefore, err := apiserverRequests(ctx, b.raw)
		if err != nil {
			return result{}, err
		}
		procs := b.processes(s)
		if procs.subject != 0 {
			if err := resetPeakRSS(procs.subject); err != nil {
				return result{}, fmt.Errorf("resetting the peak RSS of %s: %w", s.name, err)
			}
		}
		before, err := procs.sample()
		if err != nil {
			return result{}, err
		}
		start := time.Now()
		approvedAt, err := approveAll(ctx, b.kube, names, o.writers)
		if err != nil {
			return result{}, err
		}
		times, err := issued.wait(10 * time.Minute)
		if err != nil {
			return result{}, fmt.Errorf("%s %s: %w", s.name, kind.scenario, err)
		}
		wall := time.Since(start)
		after, err := procs.sample()
		if err != nil {
			return result{}, err
		}
		var peak int64
		if procs.subject != 0 {
			if peak, err = peakRSS(procs.subject); err != nil {
				return result{}, err
			}
		}
		reqAfter, err := apiserverRequests(ctx, b.raw)
		if err != nil {
			return result{}, err
		}
		run := latencyResult(kind.scenario, s, approvedAt, times, wall)
		c := costOf(before, after, len(names), peak)
		c.RequestsPerCSR = perCSR(reqBefore, reqAfter, len(names))
		run.Cost = &c
		runs = append(runs, run)
		b.logf("%s: %.0f/s; CPU-s per 1,000: %s %.2f, kube-apiserver %.2f, etcd %.2f; peak RSS %.0f MiB; requests per CSR: %s",
			kind.scenario, run.PerSecond, s.key, c.SubjectCPUPer1000, c.APIServerCPUPer1000, c.EtcdCPUPer1000, mib(peak), formatPerCSR(c.RequestsPerCSR))
		for _, done := range profiles {
			if err := <-done; err != nil {
				return result{}, fmt.Errorf("CPU profile during the burst of %s: %w", s.name, err)
			}
		}
		if len(profiles) > 0 {
			b.logf("CPU profiles of the burst saved")
		}
		// Every burst starts with no CSRs left by the ones before, so that
		// each finds the same state in kube-apiserver and in the subject.
		if _, err := deleteCSRs(ctx, b.kube, group, o.writers); err != nil {
			return result{}, err
		}
		if wall > 30*time.Second {
			break
		}
	}
	return medianRun(runs), nil
}

// apiserverProfile saves a 10 s CPU profile of kube-apiserver to file.
func (b *bench) apiserverProfile(ctx context.Context, file string) error {
	body, err := b.raw.Get().AbsPath("/debug/pprof/profile").Param("seconds", "10").DoRaw(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

// approvalsOnly is a P-256 burst that no signer serves: kube-apiserver's and
// etcd's CPU for creating nothing but the bench's approvals and its watch —
// the part of every burst's cost that is the driver's, not the subject's.
func (b *bench) approvalsOnly(ctx context.Context, o options) (result, error) {
	const group, signerName = "approvals-only", "bench.example.com/nobody"
	none := &subject{key: keyNone, name: "none (approvals only, no signer)"}
	names, err := createCSRs(ctx, b.kube, group, group, signerName, b.keys[0].request, o.n, o.writers, false)
	if err != nil {
		return result{}, err
	}
	defer func() { _, _ = deleteCSRs(ctx, b.kube, group, o.writers) }()
	w, err := watchCSRs(ctx, b.kube, "spec.signerName="+signerName, func(*certificatesv1.CertificateSigningRequest) {})
	if err != nil {
		return result{}, err
	}
	defer w()
	reqBefore, err := apiserverRequests(ctx, b.raw)
	if err != nil {
		return result{}, err
	}
	procs := b.processes(nil)
	before, err := procs.sample()
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	approvedAt, err := approveAll(ctx, b.kube, names, o.writers)
	if err != nil {
		return result{}, err
	}
	wall := time.Since(start)
	after, err := procs.sample()
	if err != nil {
		return result{}, err
	}
	reqAfter, err := apiserverRequests(ctx, b.raw)
	if err != nil {
		return result{}, err
	}
	r := latencyResult("approvals-only", none, approvedAt, approvedAt, wall)
	c := costOf(before, after, len(names), 0)
	c.RequestsPerCSR = perCSR(reqBefore, reqAfter, len(names))
	r.Cost = &c
	b.logf("%d approvals in %s; CPU-s per 1,000: kube-apiserver %.2f, etcd %.2f; requests per CSR: %s",
		len(names), since(start), c.APIServerCPUPer1000, c.EtcdCPUPer1000, formatPerCSR(c.RequestsPerCSR))
	return r, nil
}

func drainResult(s *subject, times map[string]time.Time) result {
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
	return result{Scenario: "drain", SubjectKey: s.key, Subject: s.name, N: len(times), PerSecond: float64(len(times)-1) / d.Seconds(), WallMillis: ms(d)}
}

func latencyResult(scenario string, s *subject, approvedAt, issuedAt map[string]time.Time, wall time.Duration) result {
	var lat []float64
	for name, t := range issuedAt {
		if a, ok := approvedAt[name]; ok {
			lat = append(lat, ms(t.Sub(a)))
		}
	}
	slices.Sort(lat)
	return result{Scenario: scenario, SubjectKey: s.key, Subject: s.name, N: len(issuedAt), PerSecond: float64(len(issuedAt)) / wall.Seconds(),
		P50Millis: pct(lat, 0.5), P95Millis: pct(lat, 0.95), P99Millis: pct(lat, 0.99), WallMillis: ms(wall)}
}

// medianRun is the run with the median throughput (the lower middle one of
// an even number), with every run's figures in Runs.
func medianRun(runs []result) result {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.PerSecond, b.PerSecond) })
	m := sorted[(len(sorted)-1)/2]
	for _, r := range runs {
		m.Runs = append(m.Runs, runFigures{PerSecond: r.PerSecond, Cost: r.Cost})
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// commandLine is how this run was invoked, as one would type it.
func commandLine() string {
	var parts []string
	if d := os.Getenv("SIGNET_BIN_DIR"); d != "" {
		parts = append(parts, "SIGNET_BIN_DIR="+shellQuote(d))
	}
	parts = append(parts, "go", "run", "./test/bench")
	for _, a := range os.Args[1:] {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=,./:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// loadAverage is the 1, 5 and 15 minute load averages, for judging noise.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
