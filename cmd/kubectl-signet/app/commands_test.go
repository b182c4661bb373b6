package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/signet-dev/signet/internal/testpki"
	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	signetfake "github.com/signet-dev/signet/pkg/generated/clientset/versioned/fake"
	"github.com/signet-dev/signet/pkg/wire"
)

// runCommand runs kubectl-signet with args against fake clients.
func runCommand(t *testing.T, c *Clients, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	cmd := NewCommandWithClients(streams, func() (*Clients, error) { return c, nil })
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// issueWith signs the PKCS#10 request in pemData with ca, as a signer would.
func issueWith(t *testing.T, ca *testpki.CA, pemData []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(pemData)
	cr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: cr.Subject, DNSNames: cr.DNSNames,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, cr.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// generateNames makes the fake API server honour metadata.generateName.
func generateNames(kube *kubefake.Clientset) {
	kube.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		if csr.Name == "" {
			csr.Name = csr.GenerateName + "x7k2p"
		}
		return false, nil, nil
	})
}

const csrManifest = `apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web
spec:
  commonName: web.shop.svc
  dnsNames: [web.shop.svc]
  duration: 24h
  privateKey: {algorithm: ECDSA}
  issuerRef: {name: shop-ca}
`

func TestCreateCSRWaitsAndWritesFiles(t *testing.T) {
	ca := testpki.MustCA(testpki.CAOptions{})
	kube := kubefake.NewClientset()
	generateNames(kube)
	watching := make(chan struct{})
	var once sync.Once
	kube.PrependWatchReactor("certificatesigningrequests", func(k8stesting.Action) (bool, watch.Interface, error) {
		once.Do(func() { close(watching) })
		return false, nil, nil
	})
	// The approver and signer: once the plugin watches, approve and issue.
	go func() {
		<-watching
		ctx := context.Background()
		csr, err := kube.CertificatesV1().CertificateSigningRequests().Get(ctx, "web-x7k2p", metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"})
		csr.Status.Certificate = issueWith(t, ca, csr.Spec.Request)
		csr.Annotations[wire.AnnotationCA] = base64.StdEncoding.EncodeToString(ca.CertPEM())
		if _, err := kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}()

	dir := t.TempDir()
	c := &Clients{Kube: kube, Signet: signetfake.NewSimpleClientset(), Namespace: "shop"}
	stdout, stderr, err := runCommand(t, c, csrManifest, "create", "csr", "-f", "-", "--wait", "--out-dir", dir)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	for _, want := range []string{"certificatesigningrequest.certificates.k8s.io/web-x7k2p created", "Certificate written to", "CA certificate written to"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	csr, err := kube.CertificatesV1().CertificateSigningRequests().Get(context.Background(), "web-x7k2p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if csr.Spec.SignerName != "issuers.cert-manager.io/shop.shop-ca" || csr.Annotations[wire.AnnotationRequestDuration] != "24h0m0s" {
		t.Errorf("CSR spec %+v annotations %v", csr.Spec, csr.Annotations)
	}
	// No signer: a warning, not an error.
	if !strings.Contains(stderr, "signet has no signer for Issuer shop/shop-ca") {
		t.Errorf("stderr lacks the missing-signer warning: %q", stderr)
	}
	checkKeyPair(t, dir, ca)
}

// checkKeyPair checks tls.key is private and belongs to tls.crt, and ca.crt
// verifies tls.crt.
func checkKeyPair(t *testing.T, dir string, ca *testpki.CA) {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %v", st.Mode().Perm())
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, keyFile))
	block, _ := pem.Decode(keyPEM)
	key, err := parsePEMKey(block)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, certFile))
	if err := checkCertificateKey(certPEM, key); err != nil {
		t.Error(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, caFile))
	if !bytes.Equal(caPEM, ca.CertPEM()) {
		t.Error("ca.crt is not the CA")
	}
}

func TestCreateCSRTimeoutSaysWhatItWaitsFor(t *testing.T) {
	kube := kubefake.NewClientset()
	generateNames(kube)
	_, err := kube.CoreV1().Events("default").Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-x7k2p.1", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "CertificateSigningRequest", Name: "web-x7k2p"},
		Reason:         "WaitingApproval", Message: "Waiting for the CertificateSigningRequest to be approved",
		Type: corev1.EventTypeNormal, Source: corev1.EventSource{Component: "signet"},
		LastTimestamp: metav1.Now(),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &Clients{Kube: kube, Signet: signetfake.NewSimpleClientset(), Namespace: "shop"}
	_, _, err = runCommand(t, c, csrManifest, "create", "csr", "-f", "-", "--wait", "--timeout", "300ms", "--out-dir", dir)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"timed out after 300ms", "not approved yet", "kubectl certificate approve web-x7k2p", "Normal WaitingApproval", filepath.Join(dir, keyFile)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, keyFile)); err != nil {
		t.Errorf("the key is gone: %v", err)
	}
}

func TestCreateCSRStopsOnFailure(t *testing.T) {
	kube := kubefake.NewClientset()
	kube.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest).DeepCopy()
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{
			{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue},
			{Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "DeniedReference", Message: "Requester may not reference Namespaced Issuer shop/shop-ca"},
		}
		return true, csr, nil
	})
	c := &Clients{Kube: kube, Signet: signetfake.NewSimpleClientset(), Namespace: "shop"}
	_, _, err := runCommand(t, c, csrManifest, "create", "csr", "-f", "-", "--wait", "--name", "web-1", "--out-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "CertificateSigningRequest web-1 failed: DeniedReference: Requester may not reference") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "once the CSR is signed") {
		t.Errorf("a failed CSR is never signed, but the error says how to fetch it: %v", err)
	}
}

func TestCreateCSRRefusesSelfSignedAndExistingFiles(t *testing.T) {
	signet := signetfake.NewSimpleClientset(&certmanagerv1alpha1.Signer{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-ca", Namespace: "shop"},
		Spec:       certmanagerv1alpha1.SignerSpec{Type: certmanagerv1alpha1.SignerTypeSelfSigned},
	})
	kube := kubefake.NewClientset()
	dir := t.TempDir()
	c := &Clients{Kube: kube, Signet: signet, Namespace: "shop"}
	_, _, err := runCommand(t, c, csrManifest, "create", "csr", "-f", "-", "--out-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "SelfSigned") {
		t.Fatalf("error %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}

	if err := os.WriteFile(filepath.Join(dir, keyFile), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Signet = signetfake.NewSimpleClientset()
	_, _, err = runCommand(t, c, csrManifest, "create", "csr", "-f", "-", "--out-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("error %v", err)
	}
	list, _ := kube.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 0 {
		t.Errorf("a CSR was created: %v", list.Items)
	}
}

func TestCreateCSRNamespaceConflict(t *testing.T) {
	c := &Clients{Kube: kubefake.NewClientset(), Signet: signetfake.NewSimpleClientset(), Namespace: "other", Explicit: true}
	manifest := strings.Replace(csrManifest, "  name: web\n", "  name: web\n  namespace: shop\n", 1)
	_, _, err := runCommand(t, c, manifest, "create", "csr", "-f", "-", "--out-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("error %v", err)
	}
}

func TestSignWritesKeyCertificateAndCA(t *testing.T) {
	ca := testpki.MustCA(testpki.CAOptions{})
	signet := signetfake.NewSimpleClientset()
	var got *certmanagerv1alpha1.SigningRequest
	var gotName, gotNamespace string
	signet.PrependReactor("create", "clustersigners", func(a k8stesting.Action) (bool, runtime.Object, error) {
		create := a.(k8stesting.CreateActionImpl)
		if create.GetSubresource() != "sign" {
			return false, nil, nil
		}
		got = create.GetObject().(*certmanagerv1alpha1.SigningRequest)
		gotName, gotNamespace = create.Name, create.GetNamespace()
		res := got.DeepCopy()
		res.Status.Certificate = issueWith(t, ca, got.Spec.Request)
		res.Status.CA = ca.CertPEM()
		res.Status.NotAfter = metav1.NewTime(time.Now().Add(time.Hour))
		return true, res, nil
	})
	dir := t.TempDir()
	c := &Clients{Kube: kubefake.NewClientset(), Signet: signet, Namespace: "shop"}
	manifest := strings.Replace(csrManifest, "issuerRef: {name: shop-ca}", "issuerRef: {name: root, kind: ClusterIssuer}\n  usages: [server auth]\n  isCA: false", 1)
	stdout, _, err := runCommand(t, c, manifest, "sign", "-f", "-", "--out-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if gotName != "root" || gotNamespace != "" {
		t.Errorf("signed through %q in %q", gotName, gotNamespace)
	}
	if got.Spec.ExpirationSeconds == nil || *got.Spec.ExpirationSeconds != 86400 || len(got.Spec.Usages) != 1 || got.Spec.IsCA {
		t.Errorf("SigningRequest spec %+v", got.Spec)
	}
	if !strings.Contains(stdout, "Certificate signed by ClusterIssuer root") {
		t.Errorf("output %q", stdout)
	}
	checkKeyPair(t, dir, ca)
}

func TestSignShowsAPIErrors(t *testing.T) {
	signet := signetfake.NewSimpleClientset()
	signet.PrependReactor("create", "signers", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "cert-manager.io", Resource: "signers"}, "shop-ca",
			errors.New(`User "bob" cannot create resource "signers/sign" in API group "cert-manager.io" in the namespace "shop"`))
	})
	dir := t.TempDir()
	c := &Clients{Kube: kubefake.NewClientset(), Signet: signet, Namespace: "shop"}
	_, _, err := runCommand(t, c, csrManifest, "sign", "-f", "-", "--out-dir", dir)
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `signers.cert-manager.io "shop-ca" is forbidden: User "bob" cannot create resource "signers/sign"`) {
		t.Fatalf("error %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written after an error: %v", entries)
	}
}

// signerFixture is one Ready CA signer in shop with four CSRs that are not
// issued (unapproved, approved with an IssuerNotReady event, failed,
// denied), one issued, and one for another signer.
func signerFixture(t *testing.T) *Clients {
	t.Helper()
	base := time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)
	now = func() time.Time { return base.Add(time.Hour) }
	t.Cleanup(func() { now = time.Now })
	signer := &certmanagerv1alpha1.Signer{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-ca", Namespace: "shop", CreationTimestamp: metav1.NewTime(base)},
		Spec: certmanagerv1alpha1.SignerSpec{
			SignerName: "issuers.cert-manager.io/shop.shop-ca",
			IssuerRef:  certmanagerv1alpha1.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "shop-ca"},
			Type:       certmanagerv1alpha1.SignerTypeCA,
		},
		Status: certmanagerv1alpha1.SignerStatus{
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Ready",
				Message: "signing with CA CN=shop CA", LastTransitionTime: metav1.NewTime(base)}},
			CA: &certmanagerv1alpha1.CertificateAuthority{
				Subject: "CN=shop CA", Issuer: "CN=shop CA", SerialNumber: "0A:0B", KeyAlgorithm: "ECDSA P-256",
				FingerprintSHA256: "AA:BB", NotBefore: metav1.NewTime(base), NotAfter: metav1.NewTime(base.Add(10 * 365 * 24 * time.Hour)),
			},
		},
	}
	other := signer.DeepCopy()
	other.Name, other.Namespace, other.Spec.SignerName = "lab-ca", "lab", "issuers.cert-manager.io/lab.lab-ca"
	other.Status = certmanagerv1alpha1.SignerStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse,
		Reason: "SecretNotFound", Message: "CA Secret lab/ca not found"}}}

	csr := func(name, signerName string, minutes int, conds ...certificatesv1.CertificateSigningRequestCondition) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(base.Add(time.Duration(minutes) * time.Minute))},
			Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: signerName, Username: "alice"},
			Status:     certificatesv1.CertificateSigningRequestStatus{Conditions: conds},
		}
	}
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}
	issued := csr("done", signer.Spec.SignerName, 1, approved)
	issued.Status.Certificate = []byte("cert")
	kube := kubefake.NewClientset(
		csr("pending", signer.Spec.SignerName, 10),
		csr("stuck", signer.Spec.SignerName, 20, approved),
		csr("refused", signer.Spec.SignerName, 30, approved, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "InvalidDuration", Message: "duration 5m is under 10m"}),
		csr("denied", signer.Spec.SignerName, 40, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: "Nope", Message: "not today"}),
		issued,
		csr("elsewhere", other.Spec.SignerName, 5),
		event("stuck.1", "stuck", "WaitingApproval", "Waiting for the CertificateSigningRequest to be approved", base.Add(20*time.Minute), "10"),
		event("stuck.2", "stuck", "IssuerNotReady", "Issuer shop/shop-ca is not ready: CA Secret shop/ca not found", base.Add(21*time.Minute), "11"),
		event("stuck.3", "stuck", "SomethingElse", "not from signet", base.Add(22*time.Minute), "12"),
	)
	return &Clients{Kube: kube, Signet: signetfake.NewSimpleClientset(signer, other), Namespace: "shop"}
}

func event(name, csr, reason, message string, at time.Time, rv string) *corev1.Event {
	e := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "default", ResourceVersion: rv},
		InvolvedObject: corev1.ObjectReference{Kind: "CertificateSigningRequest", Name: csr},
		Reason:         reason, Message: message, Type: corev1.EventTypeWarning,
		Source:        corev1.EventSource{Component: "signet"},
		LastTimestamp: metav1.NewTime(at),
	}
	if reason == "SomethingElse" {
		e.Source.Component = "kube-controller-manager"
	}
	return e
}

func TestStatusTable(t *testing.T) {
	c := signerFixture(t)
	stdout, _, err := runCommand(t, c, "", "status", "-A")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", stdout)
	}
	for _, want := range [][]string{
		{"NAMESPACE", "NAME", "TYPE", "READY", "REASON", "CA SUBJECT", "CA EXPIRES", "WAITING CSRS"},
		{"lab", "lab-ca", "CA", "False", "SecretNotFound", "<none>", "<none>", "1"},
		{"shop", "shop-ca", "CA", "True", "Ready", "CN=shop CA", "2036-11-20T19:00:00Z (in 9y", "2"},
	} {
		line := lines[0]
		for _, l := range lines {
			if strings.HasPrefix(l, want[0]) {
				line = l
			}
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("line %q lacks %q", line, w)
			}
		}
	}

	stdout, _, err = runCommand(t, c, "", "status", "shop-ca")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "NAMESPACE") || !strings.Contains(stdout, "shop-ca") || strings.Contains(stdout, "lab-ca") {
		t.Errorf("status shop-ca:\n%s", stdout)
	}
	_, stderr, err := runCommand(t, c, "", "status", "--cluster")
	if err != nil || !strings.Contains(stderr, "No cluster signers found.") {
		t.Errorf("status --cluster: %v %q", err, stderr)
	}
	if _, _, err := runCommand(t, c, "", "status", "x", "-A"); err == nil {
		t.Error("a name with -A was accepted")
	}
}

func TestDescribeSigner(t *testing.T) {
	c := signerFixture(t)
	stdout, _, err := runCommand(t, c, "", "describe", "signer", "shop-ca")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Name:", "shop-ca", "Namespace:", "Signer Name:", "issuers.cert-manager.io/shop.shop-ca",
		"Issuer:", "Issuer shop/shop-ca (cert-manager.io)",
		"Ready:", "True", "Reason:", "Message:", "signing with CA CN=shop CA",
		"Serial Number:", "0A:0B", "Not After:", "2036-11-20T19:00:00Z (in 9y", "Fingerprint:", "SHA256 AA:BB", "Key Algorithm:", "ECDSA P-256",
		"CSRs not signed yet: 4",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, stdout)
		}
	}
	rows := map[string][]string{
		"pending": {"50m", "alice", "Pending", "WaitingApproval", "kubectl certificate approve pending"},
		"stuck":   {"Approved", "IssuerNotReady", "CA Secret shop/ca not found"},
		"refused": {"Failed", "InvalidDuration", "duration 5m is under 10m"},
		"denied":  {"Denied", "Nope", "not today"},
	}
	for name, wants := range rows {
		line := ""
		for _, l := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), name+" ") {
				line = l
			}
		}
		for _, w := range wants {
			if !strings.Contains(line, w) {
				t.Errorf("row for %s %q lacks %q", name, line, w)
			}
		}
	}
	for _, not := range []string{"done", "elsewhere", "SomethingElse"} {
		if strings.Contains(stdout, not) {
			t.Errorf("describe shows %q:\n%s", not, stdout)
		}
	}
	if _, _, err := runCommand(t, c, "", "describe", "clustersigner", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("describe clustersigner nope: %v", err)
	}
}
