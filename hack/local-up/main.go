// Command local-up runs signet locally for development (`make run`): etcd,
// kube-apiserver and signet on 127.0.0.1, the cert-manager Issuer CRDs and two
// demo issuers, in the foreground until SIGINT or SIGTERM, which stop every
// process it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/signet-dev/signet/test/framework"
)

// dirMarker marks a directory as local-up's, so that a mistyped --dir is
// never emptied.
const dirMarker = ".signet-local-up"

const demoNamespace = "demo"

type repeatedFlag []string

func (f *repeatedFlag) String() string     { return strings.Join(*f, " ") }
func (f *repeatedFlag) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var dir string
	var signetArgs repeatedFlag
	flag.StringVar(&dir, "dir", "", "directory for data, logs and the admin kubeconfig, emptied at start (default <repo>/_output/dev)")
	flag.Var(&signetArgs, "signet-arg", "a flag passed through to signet-apiserver, e.g. --signet-arg=-v=4 (repeatable)")
	flag.Parse()

	if err := run(dir, signetArgs); err != nil {
		fmt.Fprintf(os.Stderr, "local-up: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, signetArgs []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go cancelWhenOrphaned(ctx, cancel)

	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	if dir == "" {
		dir = filepath.Join(root, "_output", "dev")
	}
	if dir, err = freshDir(dir); err != nil {
		return err
	}

	step("starting etcd and kube-apiserver in %s", dir)
	start := time.Now()
	cp, err := framework.StartControlPlane(ctx, framework.ControlPlaneOptions{Dir: dir})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping signet, kube-apiserver and etcd")
		cp.Stop()
		step("stopped")
	}()
	step("kube-apiserver ready at %s after %s", cp.URL, time.Since(start).Round(time.Millisecond))

	kube, err := kubernetes.NewForConfig(cp.AdminConfig)
	if err != nil {
		return err
	}
	crdDir, err := framework.IssuerCRDDir()
	if err != nil {
		return err
	}
	issuersInstalled, err := installCRDs(ctx, cp, crdDir)
	if err != nil {
		return err
	}
	if err := createDemo(ctx, cp, kube, issuersInstalled); err != nil {
		return err
	}

	step("starting signet")
	start = time.Now()
	s, err := framework.StartSignet(ctx, cp, framework.SignetOptions{ExtraArgs: signetArgs})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		// Keep the control plane up: it is still useful while signet is broken.
		// Without the APIService every kubectl call would complain about
		// cert-manager.io/v1alpha1 being unavailable.
		warn("signet did not start; etcd and kube-apiserver stay up without it:\n%v", err)
		if err := deleteAPIService(ctx, cp); err != nil {
			warn("removing APIService %s: %v", framework.SignetAPIServiceName, err)
		}
	} else {
		step("signet ready at %s after %s (log %s, metrics %s)", s.URL, time.Since(start).Round(time.Millisecond), s.LogPath, s.MetricsURL)
	}

	printNextSteps(cp, s)
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		step("%v", cause)
	}
	return nil
}

// freshDir empties dir, refusing a non-empty directory that local-up did not
// create, and returns its absolute path.
func freshDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, dirMarker)); err != nil {
			return "", fmt.Errorf("%s is not empty and was not created by local-up (no %s); choose another --dir", dir, dirMarker)
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, dirMarker), nil, 0o644)
}

// installCRDs applies every manifest in dir and waits until the CRDs are
// Established. It reports whether the Issuer and ClusterIssuer CRDs are there.
func installCRDs(ctx context.Context, cp *framework.ControlPlane, dir string) (bool, error) {
	manifests, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(manifests) == 0 {
		warn("no CRD manifests in %s yet: skipping the Issuer CRDs and demo issuers", dir)
		return false, nil
	}
	step("installing CRDs from %s", dir)
	names, err := cp.InstallCRDs(ctx, dir)
	if err != nil {
		return false, err
	}
	installed := 0
	for _, n := range names {
		switch n {
		case "customresourcedefinition.apiextensions.k8s.io/issuers.cert-manager.io",
			"customresourcedefinition.apiextensions.k8s.io/clusterissuers.cert-manager.io":
			installed++
		}
	}
	if installed != 2 {
		warn("%s did not define both issuers.cert-manager.io and clusterissuers.cert-manager.io (got %v): skipping the demo issuers", dir, names)
	}
	return installed == 2, nil
}

var (
	issuersGVR        = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "issuers"}
	clusterIssuersGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
)

// createDemo creates namespace demo with a CA in Secret demo-ca and, when the
// CRDs are installed, Issuer demo/demo-ca and ClusterIssuer selfsigned.
func createDemo(ctx context.Context, cp *framework.ControlPlane, kube kubernetes.Interface, withIssuers bool) error {
	// cert-manager is the --cluster-resource-namespace signet reads
	// ClusterIssuer Secrets from.
	for _, ns := range []string{demoNamespace, "cert-manager"} {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	ca, err := framework.NewCA("signet demo CA")
	if err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: "demo-ca"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       ca.CertPEM,
			corev1.TLSPrivateKeyKey: ca.KeyPEM,
			"ca.crt":                ca.CertPEM,
		},
	}
	if _, err := kube.CoreV1().Secrets(demoNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating secret %s/demo-ca: %w", demoNamespace, err)
	}
	step("created namespace %s with CA secret %s/demo-ca", demoNamespace, demoNamespace)
	if !withIssuers {
		return nil
	}

	dyn, err := dynamic.NewForConfig(cp.AdminConfig)
	if err != nil {
		return err
	}
	issuer := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1",
		"kind":       "Issuer",
		"metadata":   map[string]any{"namespace": demoNamespace, "name": "demo-ca"},
		"spec":       map[string]any{"ca": map[string]any{"secretName": "demo-ca"}},
	}}
	if _, err := dyn.Resource(issuersGVR).Namespace(demoNamespace).Create(ctx, issuer, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Issuer %s/demo-ca: %w", demoNamespace, err)
	}
	clusterIssuer := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1",
		"kind":       "ClusterIssuer",
		"metadata":   map[string]any{"name": "selfsigned"},
		"spec":       map[string]any{"selfSigned": map[string]any{}},
	}}
	if _, err := dyn.Resource(clusterIssuersGVR).Create(ctx, clusterIssuer, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating ClusterIssuer selfsigned: %w", err)
	}
	step("created Issuer %s/demo-ca and ClusterIssuer selfsigned", demoNamespace)
	return nil
}

func deleteAPIService(ctx context.Context, cp *framework.ControlPlane) error {
	agg, err := aggregator.NewForConfig(cp.AdminConfig)
	if err != nil {
		return err
	}
	err = agg.ApiregistrationV1().APIServices().Delete(ctx, framework.SignetAPIServiceName, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func printNextSteps(cp *framework.ControlPlane, s *framework.Signet) {
	kubectl := "kubectl"
	if bin, err := framework.Binary("kubectl"); err == nil {
		kubectl = relative(bin)
	}
	up := "etcd, kube-apiserver and signet are up."
	if s == nil {
		up = "etcd and kube-apiserver are up; signet is NOT (see above), so the signers commands fail until it starts."
	}
	fmt.Printf(`
%s In another shell:

  export KUBECONFIG=%s
  %[3]s get issuers,signers -A
  %[3]s get clusterissuers,clustersigners
  %[3]s api-resources --api-group=cert-manager.io -o wide
  %[3]s explain signers.spec

Logs: %s/*.log
`, up, cp.KubeconfigPath, kubectl, relative(cp.Dir))
	fmt.Println("Ctrl-C stops everything.")
}

// cancelWhenOrphaned cancels ctx if the parent process goes away (e.g. `go
// run` killed with SIGTERM, which it does not forward), so that local-up and
// its children do not outlive it.
func cancelWhenOrphaned(ctx context.Context, cancel context.CancelCauseFunc) {
	parent := os.Getppid()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != parent {
				cancel(fmt.Errorf("parent process %d exited", parent))
				return
			}
		}
	}
}

// relative shortens path to one relative to the working directory when it is
// below it.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return rel
}

func step(format string, args ...any) {
	fmt.Printf("%s >> %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func warn(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s !! %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
