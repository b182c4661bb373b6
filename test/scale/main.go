// Command scale measures what signet's read model costs at scale, for one or
// more signet binaries in turn against one control plane holding the same
// objects: by default 10,000 CA Issuers, each with its own CA Secret, in
// 1,000 namespaces, plus 50,000 Secrets no Issuer references.
//
// For each binary it reports the watches signet holds on kube-apiserver
// (apiserver_longrunning_requests{verb="WATCH"} with signet running, less
// without it), its RSS and Go heap once settled, the time from process start
// to /readyz and to every signer Ready, the same after a restart, and the
// latency of a CA rotation to a watch on signers through kube-apiserver.
//
//	go run ./test/scale -before main
//
// measures signet built from git ref main, then this tree's signet.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

type options struct {
	issuers, namespaces, unrelated, writers, rotations int
	before, out                                        string
}

// result is one binary's figures; a failed step leaves its figures zero and
// says why in Errors.
type result struct {
	Subject string   `json:"subject"`
	Binary  string   `json:"binary"`
	Args    []string `json:"args,omitempty"`
	// Died: the process exited on its own; the tail of its log is in Errors.
	Died bool `json:"died"`
	// Watches signet holds on kube-apiserver, all resources and Secrets.
	Watches       int `json:"watches"`
	SecretWatches int `json:"secretWatches"`
	// Memory once RSS settled, with every signer Ready; heap after a forced GC.
	RSSBytes  int64 `json:"rssBytes"`
	HeapBytes int64 `json:"heapInuseBytes"`
	// From process start: /readyz and APIService Available; every signer Ready.
	StartReadySeconds    float64 `json:"startReadySeconds"`
	StartAllReadySeconds float64 `json:"startAllReadySeconds"`
	// The same for a restart (the process stopped first).
	RestartReadySeconds    float64 `json:"restartReadySeconds"`
	RestartAllReadySeconds float64 `json:"restartAllReadySeconds"`
	RestartRSSBytes        int64   `json:"restartRssBytes"`
	RestartHeapBytes       int64   `json:"restartHeapInuseBytes"`
	// CA Secret update → signer watch event with the new CA, through
	// kube-apiserver's aggregator, each rotation.
	RotationSeconds []float64 `json:"rotationSeconds"`
	Errors          []string  `json:"errors,omitempty"`
}

func main() {
	var o options
	flag.IntVar(&o.issuers, "issuers", 10000, "CA Issuers, each with its own CA Secret")
	flag.IntVar(&o.namespaces, "namespaces", 1000, "namespaces the Issuers and Secrets are spread over")
	flag.IntVar(&o.unrelated, "unrelated", 50000, "Secrets no Issuer references")
	flag.IntVar(&o.writers, "writers", 32, "concurrent creators of the objects")
	flag.IntVar(&o.rotations, "rotations", 5, "CA rotations timed per binary")
	flag.StringVar(&o.before, "before", "", "git ref whose signet is measured first (built from a git archive); empty: only this tree")
	flag.StringVar(&o.out, "out", "_output/scale", "directory for report.json, the binaries and the logs")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...interface{}) {
	fmt.Printf("%s "+format+"\n", append([]interface{}{time.Now().Format("15:04:05")}, args...)...)
}

type subject struct {
	name, binary string
	args         []string
}

func run(o options) error {
	ctx := context.Background()
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var subjects []subject
	if o.before != "" {
		bin, err := buildRef(root, o.before, out)
		if err != nil {
			return err
		}
		subjects = append(subjects, subject{name: o.before, binary: bin})
	}
	bin := filepath.Join(out, "signet-apiserver-tree")
	if err := goBuild(root, bin); err != nil {
		return err
	}
	subjects = append(subjects, subject{name: "this tree", binary: bin})

	cpDir := filepath.Join(out, "controlplane")
	_ = os.RemoveAll(cpDir)
	cp, err := framework.StartControlPlane(ctx, framework.ControlPlaneOptions{Dir: cpDir})
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
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.ContentType = runtime.ContentTypeProtobuf
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(rest.CopyConfig(cfg))
	start := time.Now()
	if err := createObjects(ctx, o, kube, dyn); err != nil {
		return err
	}
	logf("created %d namespaces, %d Issuers with their Secrets and %d unrelated Secrets in %s",
		o.namespaces, o.issuers, o.unrelated, time.Since(start).Round(time.Second))
	baseAll, baseSecrets, err := settledWatches(ctx, kube)
	if err != nil {
		return err
	}
	logf("kube-apiserver holds %d watches (%d on Secrets) without signet", baseAll, baseSecrets)

	var results []result
	for i := 0; i < len(subjects); i++ {
		s := subjects[i]
		r := measure(ctx, o, cp, kube, s, i, baseAll, baseSecrets)
		results = append(results, r)
		logf("%s: %+v", s.name, r)
		// A replica that dies at scale (it has lost its leader lease when
		// its requests queued behind thousands of watches) is measured again
		// without leader election, for the read model's own figures.
		if r.Died && len(s.args) == 0 {
			subjects = slices.Insert(subjects, i+1, subject{name: s.name + ", --leader-elect=false", binary: s.binary, args: []string{"--leader-elect=false"}})
		}
	}
	data, err := json.MarshalIndent(struct {
		Issuers    int      `json:"issuers"`
		Namespaces int      `json:"namespaces"`
		Unrelated  int      `json:"unrelatedSecrets"`
		Results    []result `json:"results"`
	}{o.issuers, o.namespaces, o.unrelated, results}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), data, 0o644); err != nil {
		return err
	}
	fmt.Print(table(o, results))
	return nil
}

func buildRef(root, ref, out string) (string, error) {
	src := filepath.Join(out, "src-"+strings.NewReplacer("/", "-").Replace(ref))
	_ = os.RemoveAll(src)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("sh", "-c", "git -C \"$0\" archive \"$1\" | tar -x -C \"$2\"", root, ref, src)
	if output, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v\n%s", ref, err, output)
	}
	bin := filepath.Join(out, "signet-apiserver-"+filepath.Base(src))
	return bin, goBuild(src, bin)
}

func goBuild(dir, bin string) error {
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/signet-apiserver")
	cmd.Dir = dir
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", dir, err, output)
	}
	return nil
}

func namespace(i int) string { return fmt.Sprintf("scale-%04d", i) }

// createObjects creates the namespaces, then every Issuer's Secret and the
// Issuer, then the unrelated Secrets, each step with o.writers writers.
func createObjects(ctx context.Context, o options, kube kubernetes.Interface, dyn dynamic.Interface) error {
	ca, err := testpki.NewCA(testpki.CAOptions{CommonName: "scale CA"})
	if err != nil {
		return err
	}
	if err := framework.Parallel(ctx, o.namespaces, o.writers, func(ctx context.Context, i int) error {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace(i)}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := framework.Parallel(ctx, o.issuers, o.writers, func(ctx context.Context, i int) error {
		ns, name := namespace(i%o.namespaces), fmt.Sprintf("ca-%d", i)
		if _, err := kube.CoreV1().Secrets(ns).Create(ctx, caSecret(ns, name, ca), metav1.CreateOptions{}); err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
			"metadata": map[string]interface{}{"name": name, "namespace": ns},
			"spec":     map[string]interface{}{"ca": map[string]interface{}{"secretName": name}},
		}}
		_, err := dyn.Resource(issuers.IssuerGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	payload := make([]byte, 512)
	if _, err := rand.Read(payload); err != nil {
		return err
	}
	return framework.Parallel(ctx, o.unrelated, o.writers, func(ctx context.Context, i int) error {
		ns := namespace(i % o.namespaces)
		_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%d", i)},
			Data:       map[string][]byte{"payload": payload},
		}, metav1.CreateOptions{})
		return err
	})
}

func caSecret(ns, name string, ca *testpki.CA) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: ca.CertPEM(), corev1.TLSPrivateKeyKey: ca.KeyPEM()},
	}
}

// measure runs one binary through every measurement and stops it.
func measure(ctx context.Context, o options, cp *framework.ControlPlane, kube kubernetes.Interface, s subject, index, baseAll, baseSecrets int) result {
	r := result{Subject: s.name, Binary: s.binary, Args: s.args}
	fail := func(step string, err error) { r.Errors = append(r.Errors, step+": "+err.Error()) }
	logf("%s: starting %s %v", s.name, s.binary, s.args)
	start := time.Now()
	sig, err := framework.StartSignet(ctx, cp, framework.SignetOptions{
		Binary: s.binary, Name: fmt.Sprintf("signet-%d", index), ReadyTimeout: 20 * time.Minute,
		ExtraArgs: append([]string{"--leader-elect-resource-namespace=" + framework.SignetNamespace}, s.args...),
	})
	if err != nil {
		r.Died = true
		fail("start", err)
		return r
	}
	defer sig.Stop()
	r.StartReadySeconds = time.Since(start).Seconds()
	if err := waitAllReady(ctx, sig, o.issuers); err != nil {
		fail("start: all signers ready", err)
		if !alive(sig.Pid()) {
			r.Died = true
			fail("exited", fmt.Errorf("%.0fs after start; last lines of %s:\n%s", time.Since(start).Seconds(), sig.LogPath, tail(sig.LogPath, 8)))
			return r
		}
	}
	r.StartAllReadySeconds = time.Since(start).Seconds()
	logf("%s: ready in %.1fs, every signer ready in %.1fs", s.name, r.StartReadySeconds, r.StartAllReadySeconds)

	if all, secrets, err := settledWatches(ctx, kube); err != nil {
		fail("watches", err)
	} else {
		r.Watches, r.SecretWatches = all-baseAll, secrets-baseSecrets
	}
	if rss, heap, err := settledMemory(ctx, sig); err != nil {
		fail("memory", err)
	} else {
		r.RSSBytes, r.HeapBytes = rss, heap
	}
	for i := range o.rotations {
		d, err := rotate(ctx, cp, kube, fmt.Sprintf("%s rotation %d", s.name, i))
		if err != nil {
			fail("rotation", err)
			break
		}
		r.RotationSeconds = append(r.RotationSeconds, d.Seconds())
	}

	sig.Stop()
	start = time.Now()
	if err := sig.Restart(ctx); err != nil {
		fail("restart", err)
		return r
	}
	r.RestartReadySeconds = time.Since(start).Seconds()
	if err := waitAllReady(ctx, sig, o.issuers); err != nil {
		fail("restart: all signers ready", err)
	}
	r.RestartAllReadySeconds = time.Since(start).Seconds()
	if rss, heap, err := settledMemory(ctx, sig); err != nil {
		fail("memory after restart", err)
	} else {
		r.RestartRSSBytes, r.RestartHeapBytes = rss, heap
	}
	sig.Stop()
	return r
}

// waitAllReady polls signet directly until want signers in the scale
// namespaces are Ready.
func waitAllReady(ctx context.Context, sig *framework.Signet, want int) error {
	cfg := sig.ClientConfig()
	cfg.Timeout = time.Minute
	client := versioned.NewForConfigOrDie(cfg)
	deadline := time.Now().Add(20 * time.Minute)
	var ready int
	var last error
	for time.Now().Before(deadline) {
		if !alive(sig.Pid()) {
			return fmt.Errorf("signet exited with %d of %d signers ready (last error %v)", ready, want, last)
		}
		list, err := client.CertManagerV1alpha1().Signers("").List(ctx, metav1.ListOptions{})
		last = err
		if err == nil {
			ready = 0
			for _, s := range list.Items {
				if strings.HasPrefix(s.Namespace, "scale-") && isReady(&s) {
					ready++
				}
			}
			if ready == want {
				return nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%d of %d signers ready after 20 minutes (last error %v)", ready, want, last)
}

// alive reports whether process pid still runs.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func isReady(s *v1alpha1.Signer) bool {
	for _, c := range s.Status.Conditions {
		if c.Type == "Ready" && c.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}

// rotate replaces the CA in scale-0000/ca-0 and times the signer watch
// event through kube-apiserver that carries it.
func rotate(ctx context.Context, cp *framework.ControlPlane, kube kubernetes.Interface, cn string) (time.Duration, error) {
	ca, err := testpki.NewCA(testpki.CAOptions{CommonName: cn})
	if err != nil {
		return 0, err
	}
	ns := namespace(0)
	signers := versioned.NewForConfigOrDie(cp.AdminConfig).CertManagerV1alpha1().Signers(ns)
	list, err := signers.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	w, err := signers.Watch(wctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	secret, err := kube.CoreV1().Secrets(ns).Get(ctx, "ca-0", metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	secret.Data = caSecret(ns, "ca-0", ca).Data
	start := time.Now()
	if _, err := kube.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	for e := range w.ResultChan() {
		if e.Type != watch.Modified {
			continue
		}
		if s, ok := e.Object.(*v1alpha1.Signer); ok && s.Name == "ca-0" && s.Status.CA != nil && strings.Contains(s.Status.CA.Subject, "CN="+cn) {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("no signer event with CA %s within a minute", cn)
}

// settledWatches reads kube-apiserver's open WATCH requests, all and on
// Secrets, until three reads 500 ms apart agree.
func settledWatches(ctx context.Context, kube kubernetes.Interface) (all, secrets int, err error) {
	var last [2]int
	same := 0
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		body, err := kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			return 0, 0, err
		}
		var cur [2]int
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%q: %w", line, err)
			}
			cur[0] += int(v)
			if strings.Contains(line, `resource="secrets"`) {
				cur[1] += int(v)
			}
		}
		if cur == last {
			if same++; same >= 2 {
				return cur[0], cur[1], nil
			}
		} else {
			last, same = cur, 0
		}
	}
	return 0, 0, fmt.Errorf("watch count still moving after 5 minutes (last %v)", last)
}

// settledMemory waits until signet's RSS is stable (within 2% or 2 MiB over
// three samples 2 s apart), then forces a GC and reads the heap in use.
func settledMemory(ctx context.Context, sig *framework.Signet) (rss, heap int64, err error) {
	var samples []int64
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		rss, err = readRSS(sig.Pid())
		if err != nil {
			return 0, 0, err
		}
		samples = append(samples, rss)
		if len(samples) > 3 {
			samples = samples[1:]
		}
		if len(samples) == 3 {
			lo, hi := slices.Min(samples), slices.Max(samples)
			if hi-lo <= max(hi/50, 2<<20) {
				break
			}
		}
	}
	cfg := sig.ClientConfig()
	client, err := rest.UnversionedRESTClientFor(withCodec(cfg))
	if err != nil {
		return 0, 0, err
	}
	if err := client.Get().AbsPath("/debug/pprof/heap").Param("gc", "1").Do(ctx).Error(); err != nil {
		return 0, 0, fmt.Errorf("forcing a GC through pprof: %w", err)
	}
	heap, err = readHeap(ctx, sig.MetricsURL)
	return rss, heap, err
}

func withCodec(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return cfg
}

func readRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func readHeap(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes at %s", url)
}

func table(o options, results []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d CA Issuers with their Secrets in %d namespaces, %d unrelated Secrets\n\n", o.issuers, o.namespaces, o.unrelated)
	fmt.Fprintln(&b, "| signet | watches (Secrets) | RSS / heap MiB | ready / all Ready s | after restart: ready / all Ready s | RSS / heap MiB | CA rotation s (median, max) |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- | --- |")
	mib := func(v int64) string { return fmt.Sprintf("%.0f", float64(v)/(1<<20)) }
	for _, r := range results {
		rot := "—"
		if len(r.RotationSeconds) > 0 {
			sorted := slices.Sorted(slices.Values(r.RotationSeconds))
			rot = fmt.Sprintf("%.3f, %.3f", sorted[len(sorted)/2], sorted[len(sorted)-1])
		}
		name := r.Subject
		if r.Died {
			name += " (exited on its own)"
		}
		fmt.Fprintf(&b, "| %s | %d (%d) | %s / %s | %.1f / %.1f | %.1f / %.1f | %s / %s | %s |\n", name, r.Watches, r.SecretWatches,
			mib(r.RSSBytes), mib(r.HeapBytes), r.StartReadySeconds, r.StartAllReadySeconds,
			r.RestartReadySeconds, r.RestartAllReadySeconds, mib(r.RestartRSSBytes), mib(r.RestartHeapBytes), rot)
	}
	for _, r := range results {
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "\n%s: %s", r.Subject, e)
		}
	}
	b.WriteString("\n")
	return b.String()
}
