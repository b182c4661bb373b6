// Package bridge drives signet's signing through cert-manager — ACME, Vault,
// Venafi and external issuers, one cert-manager CertificateRequest per
// request — against a real kube-apiserver with cert-manager's own CRDs
// (from the module cache, hack/tools/certmanager) and a fake cert-manager
// (test/framework/fakecertmanager) that signs, fails, marks invalid, denies
// or leaves pending as each issuer's annotation asks.
package bridge

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/test/framework"
	"github.com/signet-dev/signet/test/framework/fakecertmanager"
)

// signTimeout is --sign-timeout of the signet under test: short, so that the
// 504 case is quick.
const signTimeout = 5 * time.Second

// bridgeArgs are the flags of the signet under test, beside framework.TestArgs.
var bridgeArgs = []string{
	"--external-issuer=testissuers.example.com",
	"--external-issuer=testclusterissuers.example.com,cluster",
	"--certificate-request-namespace=" + framework.SignetNamespace,
	"--sign-timeout=" + signTimeout.String(),
}

var env struct {
	cp     *framework.ControlPlane
	signet *framework.Signet
	fake   *fakecertmanager.Controller
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	signer versioned.Interface
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if _, err := framework.Binary("kube-apiserver"); err != nil && os.Getenv("CI") == "" {
		fmt.Fprintf(os.Stderr, "skipping the CertificateRequest bridge tests: %v\n", err)
		return 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startCtx, cancelStart := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelStart()
	cp, err := framework.StartControlPlane(startCtx, framework.ControlPlaneOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	if err := installCRDs(startCtx, cp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.cp = cp
	env.kube = kubernetes.NewForConfigOrDie(cp.AdminConfig)
	env.dyn = dynamic.NewForConfigOrDie(cp.AdminConfig)
	env.signer = versioned.NewForConfigOrDie(cp.AdminConfig)
	for _, ns := range []string{framework.SignetNamespace, "cert-manager"} {
		if _, err := env.kube.CoreV1().Namespaces().Create(startCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if env.fake, err = fakecertmanager.Start(ctx, cp.AdminConfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env.signet, err = framework.StartSignet(startCtx, cp, framework.SignetOptions{ExtraArgs: append(slices.Clone(framework.TestArgs), bridgeArgs...)}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, cp.LogTails(60))
	}
	return code
}

// installCRDs applies cert-manager's CRDs and the test issuers' CRDs. No
// artifacts/crds: cert-manager's own Issuer CRDs are the ones that matter here.
func installCRDs(ctx context.Context, cp *framework.ControlPlane) error {
	if err := cp.InstallCertManagerCRDs(ctx); err != nil {
		return fmt.Errorf("installing cert-manager's CRDs: %w", err)
	}
	dir, err := os.MkdirTemp(cp.Dir, "crds-")
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "testissuers.yaml")
	if err := os.WriteFile(file, fakecertmanager.TestIssuerCRDs, 0o600); err != nil {
		return err
	}
	_, err = cp.InstallCRDFiles(ctx, file)
	return err
}

// withSignet replaces the shared signet by one with extra flags while f runs.
func withSignet(t *testing.T, extra []string, f func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.signet.Stop()
	var s *framework.Signet
	defer func() {
		if s != nil {
			if t.Failed() {
				t.Logf("log of the signet under test: %s", s.LogPath)
			}
			s.Stop()
		}
		back, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: append(slices.Clone(framework.TestArgs), bridgeArgs...)})
		if err != nil {
			t.Fatalf("restarting the shared signet: %v", err)
		}
		env.signet = back
	}()
	args := append(append(slices.Clone(framework.TestArgs), bridgeArgs...), extra...)
	var err error
	if s, err = framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: args}); err != nil {
		t.Fatal(err)
	}
	env.signet = s
	f()
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// issuerKind is one kind of issuer the fake signs for.
type issuerKind struct {
	gvr  schema.GroupVersionResource
	kind string
}

var (
	cmIssuer          = issuerKind{fakecertmanager.IssuerGVR, "Issuer"}
	cmClusterIssuer   = issuerKind{fakecertmanager.ClusterIssuerGVR, "ClusterIssuer"}
	testIssuer        = issuerKind{fakecertmanager.TestIssuerGVR, "TestIssuer"}
	testClusterIssuer = issuerKind{fakecertmanager.TestClusterIssuerGVR, "TestClusterIssuer"}
)

// vaultSpec, acmeSpec: specs cert-manager's CRDs accept.
func vaultSpec() map[string]interface{} {
	return map[string]interface{}{"vault": map[string]interface{}{
		"server": "https://vault.example.com", "path": "pki/sign/example",
		"auth": map[string]interface{}{"tokenSecretRef": map[string]interface{}{"name": "vault-token", "key": "token"}},
	}}
}

func acmeSpec() map[string]interface{} {
	return map[string]interface{}{"acme": map[string]interface{}{
		"server":              "https://acme.example.com/directory",
		"privateKeySecretRef": map[string]interface{}{"name": "acme-account"},
		"solvers":             []interface{}{map[string]interface{}{"http01": map[string]interface{}{"ingress": map[string]interface{}{}}}},
	}}
}

// createReadyIssuer creates an issuer (namespace empty: cluster-scoped) with
// annotations for the fake, and reports it Ready as its controller would.
func createReadyIssuer(t *testing.T, k issuerKind, ns, name string, spec map[string]interface{}, annotations map[string]string) {
	t.Helper()
	ctx := context.Background()
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": k.gvr.GroupVersion().String(), "kind": k.kind,
		"metadata": map[string]interface{}{"name": name}, "spec": spec,
	}}
	u.SetAnnotations(annotations)
	var ri dynamic.ResourceInterface = env.dyn.Resource(k.gvr)
	if ns != "" {
		u.SetNamespace(ns)
		ri = env.dyn.Resource(k.gvr).Namespace(ns)
	}
	if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating %s %s/%s: %v", k.kind, ns, name, err)
	}
	if err := fakecertmanager.SetIssuerReady(ctx, env.dyn, k.gvr, ns, name, true, "Verified", "checked by the test's cert-manager"); err != nil {
		t.Fatal(err)
	}
}

func outcome(o string) map[string]string {
	return map[string]string{fakecertmanager.AnnotationOutcome: o}
}

// newRequest is a PEM PKCS#10 for a new key, and the key.
func newRequest(t *testing.T, cn string) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

var csrCounter atomic.Int64

// createCSR creates a CSR for signerName as the admin (who may reference
// every signer), or as user if given, and returns its name and key.
func createCSR(t *testing.T, signerName, user string) (string, crypto.Signer) {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), csrCounter.Add(1))
	req, key := newRequest(t, name+".example.com")
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"experimental.cert-manager.io/request-duration": "24h"}},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    req,
			SignerName: signerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		},
	}
	client := env.kube
	if user != "" {
		client = kubernetes.NewForConfigOrDie(env.cp.UserConfig(user, "signet:requesters"))
	}
	if _, err := client.CertificatesV1().CertificateSigningRequests().Create(context.Background(), csr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CSR %s: %v", name, err)
	}
	return name, key
}

func setCSRCondition(ctx context.Context, name string, typ certificatesv1.RequestConditionType) error {
	csrs := env.kube.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: typ, Status: corev1.ConditionTrue, Reason: "BridgeTest", Message: "by " + name + "'s test"})
	_, err = csrs.UpdateApproval(ctx, name, csr, metav1.UpdateOptions{})
	return err
}

func approve(t *testing.T, name string) {
	t.Helper()
	if err := setCSRCondition(context.Background(), name, certificatesv1.CertificateApproved); err != nil {
		t.Fatal(err)
	}
}

// waitCSR waits until cond holds for CSR name, and returns it.
func waitCSR(t *testing.T, name string, d time.Duration, what string, cond func(*certificatesv1.CertificateSigningRequest) bool) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var csr *certificatesv1.CertificateSigningRequest
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		var err error
		csr, err = env.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		return err == nil && cond(csr), err
	})
	if err != nil {
		t.Fatalf("CSR %s: %s: %v\nstatus: %+v\nevents:\n%s", name, what, err, csr.Status.Conditions, eventsFor(t, name))
	}
	return csr
}

func issued(csr *certificatesv1.CertificateSigningRequest) bool {
	return len(csr.Status.Certificate) > 0
}

func failedCondition(csr *certificatesv1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequestCondition {
	for i, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateFailed {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

func mustIssue(t *testing.T, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	csr := waitCSR(t, name, 30*time.Second, "want a certificate", func(c *certificatesv1.CertificateSigningRequest) bool {
		return issued(c) || failedCondition(c) != nil
	})
	if f := failedCondition(csr); f != nil {
		t.Fatalf("CSR %s failed: %s: %s", name, f.Reason, f.Message)
	}
	return csr
}

func mustFail(t *testing.T, name, reason string) *certificatesv1.CertificateSigningRequestCondition {
	t.Helper()
	csr := waitCSR(t, name, 30*time.Second, "want Failed/"+reason, func(c *certificatesv1.CertificateSigningRequest) bool {
		return issued(c) || failedCondition(c) != nil
	})
	f := failedCondition(csr)
	if f == nil || f.Reason != reason {
		t.Fatalf("CSR %s: Failed %+v (issued %v), want reason %s", name, f, issued(csr), reason)
	}
	return f
}

// events are the events on CSR name, as "<type> <reason> <message> (xN)" lines.
func events(t *testing.T, name string) []corev1.Event {
	t.Helper()
	list, err := env.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func eventsFor(t *testing.T, name string) string {
	var b strings.Builder
	for _, e := range events(t, name) {
		fmt.Fprintf(&b, "%s %s %s (x%d)\n", e.Type, e.Reason, e.Message, e.Count)
	}
	return b.String()
}

// certificateRequestOf is the CertificateRequest made for CSR name, or nil,
// found by its label; more than one fails the test.
func certificateRequestOf(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := env.dyn.Resource(certificaterequest.GVR).List(context.Background(), metav1.ListOptions{
		LabelSelector: certificaterequest.LabelRequestUID + "=" + string(csr.UID)})
	if err != nil {
		t.Fatal(err)
	}
	switch len(list.Items) {
	case 0:
		return nil
	case 1:
		return &list.Items[0]
	}
	t.Fatalf("CSR %s has %d CertificateRequests, want one", name, len(list.Items))
	return nil
}

func condition(u *unstructured.Unstructured, typ string) map[string]interface{} {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

// chainOf parses status.certificate; it must be leaf + the fake's
// intermediate, verify against the fake's root, and be for key.
func chainOf(t *testing.T, certPEM []byte, key crypto.Signer) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) != 2 || !chain[1].Equal(env.fake.Intermediate()) {
		t.Fatalf("status.certificate holds %d certificates, want the leaf and cert-manager's intermediate", len(chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(env.fake.Root())
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the certificate does not verify against cert-manager's root: %v", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chain[0].RawSubjectPublicKeyInfo, pub) {
		t.Error("the certificate is not for the requester's key")
	}
	return chain
}
