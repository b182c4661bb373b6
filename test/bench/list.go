package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"

	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

// listReport is the signers list scenario: many Issuers, and how long
// listing their signers takes next to listing the Issuers themselves.
type listReport struct {
	Issuers    int `json:"issuers"`
	Namespaces int `json:"namespaces"`
	// CreateSeconds is how long creating the namespaces, CA Secrets and
	// Issuers took; ListedSeconds and ReadySeconds how long after that signet
	// listed every signer, and listed every one Ready.
	CreateSeconds float64      `json:"createSeconds"`
	ListedSeconds float64      `json:"allListedSeconds"`
	ReadySeconds  float64      `json:"allReadySeconds"`
	SignetBefore  memory       `json:"signetBefore"`
	SignetAfter   memory       `json:"signetAfter"`
	Timings       []listTiming `json:"timings"`
}

// listTiming is one way of listing, timed over several runs.
type listTiming struct {
	What         string    `json:"what"`
	RunsMillis   []float64 `json:"runsMillis"`
	MedianMillis float64   `json:"medianMillis"`
	MinMillis    float64   `json:"minMillis"`
}

const listNamespacePrefix = "list-"

// listScenario creates issuers Issuers, 10 per namespace sharing that
// namespace's CA Secret, waits until signet lists them all Ready, and times
// each way of listing signers against the same way of listing Issuers,
// repeat times each (after one warm-up run). With heapProfileTo set, a heap
// profile of signet with every signer Ready is saved there. The objects are left in place:
// without kube-controller-manager's namespace controller, deleting the
// namespaces would never finish.
func (b *bench) listScenario(ctx context.Context, total, repeat int, heapProfileTo string) (*listReport, error) {
	const perNamespace = 10
	namespaces := (total + perNamespace - 1) / perNamespace
	rep := &listReport{Issuers: total, Namespaces: namespaces}

	if err := restartSignet(ctx, b.kube, b.sig); err != nil {
		return rep, err
	}
	var err error
	if rep.SignetBefore, err = settledMemory(ctx, b.sig); err != nil {
		return rep, err
	}
	b.logf("signet before: %v", rep.SignetBefore)

	start := time.Now()
	caData := map[string][]byte{"tls.crt": b.ca.CertPEM(), "tls.key": b.ca.KeyPEM()}
	err = framework.Parallel(ctx, namespaces, b.writers, func(ctx context.Context, i int) error {
		ns := fmt.Sprintf("%s%04d", listNamespacePrefix, i)
		if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: ns}, Type: corev1.SecretTypeTLS, Data: caData}
		if _, err := b.kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			return err
		}
		for j := range min(perNamespace, total-i*perNamespace) {
			if _, err := b.dyn.Resource(issuers.IssuerGVR).Namespace(ns).Create(ctx, caIssuer(ns, fmt.Sprintf("ca-%d", j)), metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	rep.CreateSeconds = time.Since(start).Seconds()
	if err != nil {
		return rep, err
	}
	b.logf("created %d namespaces, %d Secrets, %d Issuers in %.1fs", namespaces, namespaces, total, rep.CreateSeconds)

	if err := b.waitForSigners(ctx, total, rep); err != nil {
		return rep, err
	}
	if rep.SignetAfter, err = settledMemory(ctx, b.sig); err != nil {
		return rep, err
	}
	b.logf("signet after: %v", rep.SignetAfter)
	if heapProfileTo != "" {
		if err := fetchProfile(ctx, b.sig, "/debug/pprof/heap", heapProfileTo); err != nil {
			return rep, fmt.Errorf("heap profile: %w", err)
		}
	}

	// Every way lists in pages of 500, as kubectl does: the signers as the
	// Issuers, so that paginated is compared with paginated.
	signers := versioned.NewForConfigOrDie(b.cfg).CertManagerV1alpha1().Signers("")
	raw := kubernetes.NewForConfigOrDie(b.cfg).Discovery().RESTClient() // JSON, as the GETs say
	ways := []struct {
		what string
		list func(context.Context) error
	}{
		{"kubectl get signers -A", func(ctx context.Context) error { return b.kubectl(ctx, "get", "signers", "-A") }},
		{"kubectl get issuers -A", func(ctx context.Context) error { return b.kubectl(ctx, "get", "issuers", "-A") }},
		{"client-go list signers (generated clientset, pager)", func(ctx context.Context) error {
			return pagedList(ctx, total, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return signers.List(ctx, o) })
		}},
		{"client-go list issuers (dynamic client, pager)", func(ctx context.Context) error {
			return pagedList(ctx, total, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return b.dyn.Resource(issuers.IssuerGVR).Namespace("").List(ctx, o)
			})
		}},
		{"GET /apis/cert-manager.io/v1alpha1/signers?limit=500 and continue (JSON; only the continue token decoded)", func(ctx context.Context) error {
			return rawPages(ctx, raw, "/apis/cert-manager.io/v1alpha1/signers")
		}},
		{"GET /apis/cert-manager.io/v1/issuers?limit=500 and continue (JSON; only the continue token decoded)", func(ctx context.Context) error {
			return rawPages(ctx, raw, "/apis/cert-manager.io/v1/issuers")
		}},
	}
	timings := make([]listTiming, len(ways))
	for run := -1; run < repeat; run++ { // run -1 warms up
		for i, w := range ways {
			t := time.Now()
			if err := w.list(ctx); err != nil {
				return rep, fmt.Errorf("%s: %w", w.what, err)
			}
			if run >= 0 {
				timings[i].RunsMillis = append(timings[i].RunsMillis, ms(time.Since(t)))
			}
		}
	}
	for i, w := range ways {
		t := &timings[i]
		t.What = w.what
		sorted := slices.Sorted(slices.Values(t.RunsMillis))
		t.MedianMillis, t.MinMillis = sorted[len(sorted)/2], sorted[0]
		b.logf("%s: median %.0f ms, min %.0f ms", t.What, t.MedianMillis, t.MinMillis)
	}
	rep.Timings = timings
	return rep, nil
}

const listPageSize = 500

// pagedList lists with client-go's pager in pages of listPageSize, as
// informers and kubectl do, and checks it got at least want items.
func pagedList(ctx context.Context, want int, list func(context.Context, metav1.ListOptions) (runtime.Object, error)) error {
	p := pager.New(pager.SimplePageFunc(func(o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) }))
	p.PageSize = listPageSize
	p.FullListIfExpired = false // a 410 is a failure here, not a reason to list unpaginated
	obj, paginated, err := p.ListWithAlloc(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if !paginated {
		return fmt.Errorf("the list came in one page")
	}
	return atLeast(meta.LenList(obj), want)
}

// rawPages GETs path page by page, reading from each only its continue token.
func rawPages(ctx context.Context, c rest.Interface, path string) error {
	cont := ""
	for pages := 1; ; pages++ {
		req := c.Get().AbsPath(path).Param("limit", strconv.Itoa(listPageSize))
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.DoRaw(ctx)
		if err != nil {
			return err
		}
		var l struct {
			Metadata metav1.ListMeta `json:"metadata"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("%s page %d: %w", path, pages, err)
		}
		if cont = l.Metadata.Continue; cont == "" {
			if pages == 1 {
				return fmt.Errorf("%s came in one page", path)
			}
			return nil
		}
	}
}

// waitForSigners polls the signers list through kube-apiserver until it holds
// every Issuer in the list namespaces, then until each is Ready.
func (b *bench) waitForSigners(ctx context.Context, total int, rep *listReport) error {
	signers := versioned.NewForConfigOrDie(b.cfg).CertManagerV1alpha1().Signers("")
	start := time.Now()
	allListed := false
	for {
		l, err := signers.List(ctx, metav1.ListOptions{})
		listed, ready := 0, 0
		if err == nil {
			for _, s := range l.Items {
				if strings.HasPrefix(s.Namespace, listNamespacePrefix) {
					listed++
					if isReady(&s) {
						ready++
					}
				}
			}
		}
		if listed == total && !allListed {
			allListed, rep.ListedSeconds = true, time.Since(start).Seconds()
		}
		if ready == total {
			rep.ReadySeconds = time.Since(start).Seconds()
			b.logf("signet listed all %d signers after %.1fs, all Ready after %.1fs", total, rep.ListedSeconds, rep.ReadySeconds)
			return nil
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("after 10 minutes signet lists %d of %d signers, %d Ready (last error: %v)", listed, total, ready, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func isReady(s *certmanagerv1alpha1.Signer) bool {
	for _, c := range s.Status.Conditions {
		if c.Type == certmanagerv1alpha1.SignerConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// atLeast checks that a list returned at least want items.
func atLeast(got, want int) error {
	if got < want {
		return fmt.Errorf("listed %d items, want at least %d", got, want)
	}
	return nil
}

func caIssuer(namespace, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
		"metadata": map[string]interface{}{"name": name, "namespace": namespace},
		"spec":     map[string]interface{}{"ca": map[string]interface{}{"secretName": "ca"}}}}
}

// kubectl runs the built kubectl as the admin with its output discarded, as
// a user would run it (with the control plane's discovery cache).
func (b *bench) kubectl(ctx context.Context, args ...string) error {
	bin, err := framework.Binary("kubectl")
	if err != nil {
		return err
	}
	full := append([]string{"--kubeconfig=" + b.cp.KubeconfigPath, "--cache-dir=" + filepath.Join(b.cp.Dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // stdout nil: /dev/null
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
