// Package integration drives signet through a real kube-apiserver and etcd,
// with client-go and the built kubectl. One control plane and one signet serve
// every test in the package; each test works in namespaces of its own.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

// baseSignetArgs are the flags of the shared signet.
var baseSignetArgs = framework.TestArgs

// withSignet runs f with the shared signet replaced by one started with
// extra flags (env.signet while f runs), and puts the usual one back afterwards.
func withSignet(t *testing.T, extra []string, f func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.signet.Stop()
	var s *framework.Signet
	// Put the shared signet back whatever happens, or every later test fails.
	defer func() {
		if s != nil {
			s.Stop()
		}
		back, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: baseSignetArgs})
		if err != nil {
			t.Fatalf("restarting the shared signet: %v", err)
		}
		env.signet = back
	}()
	var err error
	s, err = framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: append(append([]string{}, baseSignetArgs...), extra...)})
	if err != nil {
		t.Fatal(err)
	}
	// Helpers that read env.signet (its metrics, say) see the one running.
	env.signet = s
	f()
}

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources:
  - group: cert-manager.io
- level: None
`

var env struct {
	auditLog string
	cp       *framework.ControlPlane
	signet   *framework.Signet
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	signer   versioned.Interface
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := framework.Binary("kube-apiserver"); err != nil && os.Getenv("CI") == "" {
		fmt.Fprintf(os.Stderr, "skipping integration tests: %v\n", err)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Anonymous requests get 401 from kube-apiserver, as on a hardened cluster;
	// signet's own 401 for anonymous requests is tested directly against it.
	// kube-apiserver audits every cert-manager.io request, signet's included.
	auditDir, err := os.MkdirTemp("", "signet-audit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(auditDir)
	policy := filepath.Join(auditDir, "policy.yaml")
	env.auditLog = filepath.Join(auditDir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Node authorization and NodeRestriction hold the pod certificate tests'
	// kubelet to what a kubelet may do.
	cp, sig, err := framework.StartEnvironment(ctx, framework.ControlPlaneOptions{DisableAnonymousAuth: true, NodeAuthorization: true,
		ExtraArgs: []string{"--audit-policy-file=" + policy, "--audit-log-path=" + env.auditLog}}, framework.SignetOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	env.cp, env.signet = cp, sig
	env.kube = kubernetes.NewForConfigOrDie(cp.AdminConfig)
	env.dyn = dynamic.NewForConfigOrDie(cp.AdminConfig)
	env.signer = versioned.NewForConfigOrDie(cp.AdminConfig)
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, cp.LogTails(40))
	}
	return code
}

// kubectl runs the built kubectl as admin and fails the test on error.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, err := env.cp.Kubectl(ctx, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// putCASecret creates or replaces a kubernetes.io/tls Secret.
func putCASecret(t *testing.T, ns, name string, certPEM, keyPEM []byte) {
	t.Helper()
	ctx := context.Background()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}
	_, err := env.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = env.kube.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// newCAIssuerNamespace creates namespace ns with a fresh CA in Secret "ca"
// and a CA Issuer issuer that uses it, and returns the issuer's signer name.
func newCAIssuerNamespace(t *testing.T, ns, issuer string) string {
	t.Helper()
	createNamespace(t, ns)
	ca := newCA(t, testpki.CAOptions{})
	putCASecret(t, ns, "ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, ns, issuer, nil, caSpec("ca"))
	return "issuers.cert-manager.io/" + ns + "." + issuer
}

func newCA(t *testing.T, o testpki.CAOptions) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA(o)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// createIssuer creates an Issuer (ns != "") or ClusterIssuer with spec.
func createIssuer(t *testing.T, ns, name string, labels map[string]string, spec map[string]interface{}) {
	t.Helper()
	kind, gvr := "Issuer", issuers.IssuerGVR
	if ns == "" {
		kind, gvr = "ClusterIssuer", issuers.ClusterIssuerGVR
	}
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "cert-manager.io/v1", "kind": kind,
		"metadata": map[string]interface{}{"name": name}, "spec": spec,
	}}
	u.SetLabels(labels)
	var err error
	if ns == "" {
		_, err = env.dyn.Resource(gvr).Create(context.Background(), u, metav1.CreateOptions{})
	} else {
		u.SetNamespace(ns)
		_, err = env.dyn.Resource(gvr).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func caSpec(secret string) map[string]interface{} {
	return map[string]interface{}{"ca": map[string]interface{}{"secretName": secret}}
}

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			ok, err := cond()
			last = err
			return ok, nil
		})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
	}
}
