package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/internal/testpki"
	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/test/framework"
)

// certCase is one Certificate manifest and what its certificate must hold.
type certCase struct {
	name       string // metadata.name; CSR names start with name + "-"
	namespace  string // metadata.namespace; "" for none (then -n decides)
	issuerKind string
	issuerName string
	algorithm  string // privateKey.algorithm
	size       int
	encoding   string
	keyPEMType string // the PEM block tls.key must hold
	keyCheck   func(any) bool
}

func (c certCase) manifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: %s\n", c.name)
	if c.namespace != "" {
		fmt.Fprintf(&b, "  namespace: %s\n", c.namespace)
	}
	fmt.Fprintf(&b, `spec:
  secretName: %[1]s-tls
  commonName: %[1]s.example.svc
  dnsNames: [%[1]s.example.svc, %[1]s.example.com]
  ipAddresses: [127.0.0.1]
  subject:
    organizations: [signet e2e]
  duration: 48h
  usages: [digital signature, key encipherment, server auth]
  privateKey:
    algorithm: %[2]s
`, c.name, c.algorithm)
	if c.size != 0 {
		fmt.Fprintf(&b, "    size: %d\n", c.size)
	}
	if c.encoding != "" {
		fmt.Fprintf(&b, "    encoding: %s\n", c.encoding)
	}
	fmt.Fprintf(&b, "  issuerRef:\n    name: %s\n    kind: %s\n    group: cert-manager.io\n", c.issuerName, c.issuerKind)
	return b.String()
}

func (c certCase) write(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), c.name+".yaml")
	if err := os.WriteFile(p, []byte(c.manifest()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func rsaKey(bits int) func(any) bool {
	return func(k any) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == bits }
}

func ecKey(bits int) func(any) bool {
	return func(k any) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve.Params().BitSize == bits }
}

func edKey(k any) bool { _, ok := k.(ed25519.PublicKey); return ok }

// keyCases are the key types and encodings every request path is tried
// with; ns and clusterIssuer fill in the issuers.
func keyCases(prefix, ns, issuer, clusterIssuer string) []certCase {
	return []certCase{
		{name: prefix + "rsa", namespace: ns, issuerKind: "Issuer", issuerName: issuer, algorithm: "RSA", size: 3072,
			keyPEMType: "RSA PRIVATE KEY", keyCheck: rsaKey(3072)},
		{name: prefix + "ecdsa", namespace: ns, issuerKind: "Issuer", issuerName: issuer, algorithm: "ECDSA", size: 384,
			keyPEMType: "EC PRIVATE KEY", keyCheck: ecKey(384)},
		{name: prefix + "ed25519", namespace: ns, issuerKind: "Issuer", issuerName: issuer, algorithm: "Ed25519",
			keyPEMType: "PRIVATE KEY", keyCheck: edKey},
		// No metadata.namespace: the ClusterIssuer's signer name has none anyway.
		{name: prefix + "cluster", issuerKind: "ClusterIssuer", issuerName: clusterIssuer, algorithm: "RSA", encoding: "PKCS8",
			keyPEMType: "PRIVATE KEY", keyCheck: rsaKey(2048)},
	}
}

// approveCSR approves, as an admin would, the CSR whose name starts with
// prefix once it exists, and returns its name.
func approveCSR(t *testing.T, prefix string) string {
	t.Helper()
	csr := findCSR(t, prefix)
	setCondition(t, csr, certificatesv1.CertificateApproved, "E2EApproved", "approved by the e2e test")
	return csr.Name
}

func findCSR(t *testing.T, prefix string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var found *certificatesv1.CertificateSigningRequest
	eventually(t, "a CSR named "+prefix+"*", func() (bool, error) {
		list, err := env.kube.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			if strings.HasPrefix(list.Items[i].Name, prefix) {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

func setCondition(t *testing.T, csr *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType, reason, message string) {
	t.Helper()
	csr = csr.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message})
	if _, err := env.kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(context.Background(), csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// verifyIssued checks what the plugin wrote into dir for c: openssl
// verifies tls.crt against ca, tls.key is private, of the requested type and
// encoding, and belongs to tls.crt, and the certificate says what the
// manifest asked for.
func verifyIssued(t *testing.T, dir string, c certCase, ca *testpki.CA) {
	t.Helper()
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	out, err := exec.Command("openssl", "verify", "-CAfile", caPath, certPath).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != certPath+": OK" {
		t.Errorf("openssl verify: %v: %s", err, out)
	}

	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key has mode %v, want 0600", st.Mode().Perm())
	}
	keyPEM, _ := os.ReadFile(keyPath)
	certPEM, _ := os.ReadFile(certPath)
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != c.keyPEMType {
		t.Errorf("tls.key is not a %s PEM block", c.keyPEMType)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("tls.key does not match tls.crt: %v", err)
	}

	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("tls.crt holds no PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !c.keyCheck(cert.PublicKey) {
		t.Errorf("certificate key %T is not the requested %s %d", cert.PublicKey, c.algorithm, c.size)
	}
	wantDNS := []string{c.name + ".example.svc", c.name + ".example.com"}
	if cert.Subject.CommonName != c.name+".example.svc" || !reflect.DeepEqual(cert.DNSNames, wantDNS) ||
		len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) ||
		!reflect.DeepEqual(cert.Subject.Organization, []string{"signet e2e"}) {
		t.Errorf("certificate subject %q SANs %v %v, want CN %s.example.svc, %v, 127.0.0.1", cert.Subject, cert.DNSNames, cert.IPAddresses, c.name, wantDNS)
	}
	if !reflect.DeepEqual(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) ||
		cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || cert.IsCA {
		t.Errorf("key usage %v, extended %v, isCA %v", cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
	}
	// duration: 48h, exactly, as cert-manager issues it.
	if d := cert.NotAfter.Sub(cert.NotBefore); d != 48*time.Hour {
		t.Errorf("certificate valid for %s (%s to %s), want exactly 48h", d, cert.NotBefore, cert.NotAfter)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil || string(caPEM) != string(ca.CertPEM()) {
		t.Errorf("ca.crt is not the issuer's CA (%v)", err)
	}
}

// TestCreateCSR requests a certificate of each key type through a CSR, as
// `kubectl-signet create csr --wait` with an admin approving, and verifies
// the files it writes.
func TestCreateCSR(t *testing.T) {
	ns := "plugin-csr"
	createNamespace(t, ns)
	ca := newCAIssuer(t, ns, "team-ca", testpki.ECDSAP256)
	clusterCA := newCAIssuer(t, "", "plugin-csr-root", testpki.RSA2048)
	for _, c := range keyCases("csr-", ns, "team-ca", "plugin-csr-root") {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			run := startPlugin(t, "", "create", "csr", "-f", c.write(t), "--wait", "--timeout", "2m", "--out-dir", dir)
			name := approveCSR(t, c.name+"-")
			stdout, stderr, err := run.wait()
			if err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			for _, want := range []string{"certificatesigningrequest.certificates.k8s.io/" + name + " created", "Certificate written to", "CA certificate written to"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
			want := ca
			if c.issuerKind == "ClusterIssuer" {
				want = clusterCA
			}
			verifyIssued(t, dir, c, want)

			csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantSigner := "issuers.cert-manager.io/" + ns + ".team-ca"
			if c.issuerKind == "ClusterIssuer" {
				wantSigner = "clusterissuers.cert-manager.io/plugin-csr-root"
			}
			if csr.Spec.SignerName != wantSigner || csr.Annotations["experimental.cert-manager.io/request-duration"] != "48h0m0s" {
				t.Errorf("CSR signerName %q annotations %v", csr.Spec.SignerName, csr.Annotations)
			}
		})
	}
}

// TestKubectlRunsPlugin runs the plugin the way users do: `kubectl signet`,
// with kubectl-signet on PATH.
func TestKubectlRunsPlugin(t *testing.T) {
	ns := "plugin-kubectl"
	createNamespace(t, ns)
	ca := newCAIssuer(t, ns, "kubectl-ca", testpki.ECDSAP256)
	kubectl, err := framework.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := startCommand(t, "", kubectl, "plugin", "list").wait()
	if err != nil || !strings.Contains(list, filepath.Join(env.pluginDir, "kubectl-signet")) {
		t.Errorf("kubectl plugin list: %v\n%s", err, list)
	}

	c := keyCases("kubectl-", "", "kubectl-ca", "")[1]
	dir := filepath.Join(t.TempDir(), "certs")
	// The namespace comes from -n here: the manifest has none.
	run := startCommand(t, "", kubectl, "signet", "create", "csr", "-f", c.write(t), "-n", ns, "--name", "kubectl-app", "--wait", "--out-dir", dir)
	approveCSR(t, "kubectl-app")
	stdout, stderr, err := run.wait()
	if err != nil {
		t.Fatalf("kubectl signet: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("$ kubectl signet create csr -f %s.yaml -n %s --name kubectl-app --wait --out-dir certs\n%s", c.name, ns, stdout)
	verifyIssued(t, dir, c, ca)
}

// TestCreateCSRReportsDenialAndFailure: a denied CSR, and one signet fails
// (the requester may not reference the Issuer), end the wait with the
// condition's reason and message.
func TestCreateCSRReportsDenialAndFailure(t *testing.T) {
	ns := "plugin-refused"
	createNamespace(t, ns)
	newCAIssuer(t, ns, "strict-ca", testpki.ECDSAP256)
	c := keyCases("refused-", ns, "strict-ca", "")[1]

	run := startPlugin(t, "", "create", "csr", "-f", c.write(t), "--name", "denied-app", "--wait", "--out-dir", t.TempDir())
	setCondition(t, findCSR(t, "denied-app"), certificatesv1.CertificateDenied, "E2EDenied", "not this one")
	_, stderr, err := run.wait()
	if err == nil || !strings.Contains(stderr, "CertificateSigningRequest denied-app was denied: E2EDenied: not this one") {
		t.Errorf("denied: %v\n%s", err, stderr)
	}

	// bob may create and read CSRs and read signers, but not reference.
	ctx := context.Background()
	_, err = env.kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "plugin-e2e-requester"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "list", "watch"}},
			{APIGroups: []string{"cert-manager.io"}, Resources: []string{"signers", "clustersigners"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "plugin-e2e-requester"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "plugin-e2e-requester"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "bob"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := env.cp.WriteUserKubeconfig("bob")
	if err != nil {
		t.Fatal(err)
	}
	run = startPlugin(t, bob, "create", "csr", "-f", c.write(t), "--name", "unreferenced-app", "--wait", "--out-dir", t.TempDir())
	approveCSR(t, "unreferenced-app")
	_, stderr, err = run.wait()
	want := "CertificateSigningRequest unreferenced-app failed: DeniedReference: Requester may not reference Namespaced Issuer " + ns + "/strict-ca"
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("unreferenced: %v\n%s", err, stderr)
	}
}

// TestStatusAndDescribe: a CSR nobody approves times out naming signet's
// WaitingApproval event; status counts it; describe lists it, and an
// approved CSR to a signer whose CA Secret is missing, with signet's reason.
func TestStatusAndDescribe(t *testing.T) {
	ns := "plugin-status"
	createNamespace(t, ns)
	newCAIssuer(t, ns, "status-ca", testpki.ECDSAP256)
	createIssuer(t, ns, "broken-ca", "no-such-secret")
	c := keyCases("status-", ns, "status-ca", "")[1]

	_, stderr, err := startPlugin(t, "", "create", "csr", "-f", c.write(t), "--name", "pending-app", "--wait", "--timeout", "5s", "--out-dir", t.TempDir()).wait()
	if err == nil || !strings.Contains(stderr, "timed out after 5s waiting for CertificateSigningRequest pending-app to be signed: it is not approved yet") ||
		!strings.Contains(stderr, "latest event from signet: Normal WaitingApproval: Waiting for the CertificateSigningRequest to be approved") {
		t.Errorf("timeout: %v\n%s", err, stderr)
	}
	t.Logf("$ kubectl signet create csr -f %s.yaml --name pending-app --wait --timeout 5s\n%s", c.name, stderr)

	broken := c
	broken.name, broken.issuerName = "broken-app", "broken-ca"
	stdout, stderr, err := startPlugin(t, "", "create", "csr", "-f", broken.write(t), "--name", "broken-app", "--out-dir", t.TempDir()).wait()
	if err != nil || !strings.Contains(stderr, "is not ready (SecretNotFound") {
		t.Errorf("create csr for a broken signer: %v\n%s%s", err, stdout, stderr)
	}
	approveCSR(t, "broken-app")
	eventually(t, "signet's SecretMissing event on broken-app", func() (bool, error) {
		list, err := env.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=broken-app"})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Reason == "SecretMissing" {
				return true, nil
			}
		}
		return false, nil
	})

	out := runPlugin(t, "status", "-A")
	t.Logf("$ kubectl signet status -A\n%s", out)
	for _, want := range []string{"NAMESPACE", "WAITING CSRS"} {
		if !strings.Contains(out, want) {
			t.Errorf("status -A lacks %q", want)
		}
	}
	assertRow(t, out, ns+" ", "status-ca", "CA", "True", "Ready", "CN=status-ca CA", " 1")
	assertRow(t, out, ns+" ", "broken-ca", "CA", "False", "SecretNotFound", "<none>", " 1")

	out = runPlugin(t, "status", "status-ca", "-n", ns)
	assertRow(t, out, "status-ca", "True", "Ready", " 1")

	out = runPlugin(t, "describe", "signer", "status-ca", "-n", ns)
	t.Logf("$ kubectl signet describe signer status-ca -n %s\n%s", ns, out)
	for _, want := range []string{"Signer Name:", "issuers.cert-manager.io/" + ns + ".status-ca", "Ready:", "True", "CA:", "Subject:", "CN=status-ca CA",
		"Serial Number:", "Fingerprint:", "SHA256 ", "Key Algorithm:", "ECDSA P-256", "CSRs not signed yet: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q", want)
		}
	}
	assertRow(t, out, "  pending-app", "Pending", "WaitingApproval", "kubectl certificate approve pending-app")

	out = runPlugin(t, "describe", "signer", "broken-ca", "-n", ns)
	t.Logf("$ kubectl signet describe signer broken-ca -n %s\n%s", ns, out)
	assertRow(t, out, "  broken-app", "Approved", "SecretMissing", "not ready")
	if !strings.Contains(out, "SecretNotFound") {
		t.Errorf("describe broken-ca lacks the signer's reason")
	}

	newCAIssuer(t, "", "plugin-status-root", testpki.ECDSAP256)
	out = runPlugin(t, "status", "--cluster")
	t.Logf("$ kubectl signet status --cluster\n%s", out)
	assertRow(t, out, "plugin-status-root", "CA", "True", "Ready", "CN=plugin-status-root CA")
	out = runPlugin(t, "describe", "clustersigner", "plugin-status-root")
	if !strings.Contains(out, "clusterissuers.cert-manager.io/plugin-status-root") || !strings.Contains(out, "CSRs not signed yet: <none>") {
		t.Errorf("describe clustersigner:\n%s", out)
	}
}

// assertRow finds the line starting with first and checks it holds rest.
func assertRow(t *testing.T, out, first string, rest ...string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, first) && strings.Contains(line, rest[0]) {
			for _, w := range rest {
				if !strings.Contains(line, w) {
					t.Errorf("line %q lacks %q", line, w)
				}
			}
			return
		}
	}
	t.Errorf("no line starting %q with %q in:\n%s", first, rest[0], out)
}

// TestSign gets a certificate of each key type in one round trip through
// the sign subresource, and shows a 403 as the API server words it.
func TestSign(t *testing.T) {
	ns := "plugin-sign"
	createNamespace(t, ns)
	ca := newCAIssuer(t, ns, "sign-ca", testpki.ECDSAP256)
	clusterCA := newCAIssuer(t, "", "plugin-sign-root", testpki.RSA2048)
	requireSignSubresource(t, ns, "sign-ca")
	for _, c := range keyCases("sign-", ns, "sign-ca", "plugin-sign-root") {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			stdout, stderr, err := startPlugin(t, "", "sign", "-f", c.write(t), "--out-dir", dir).wait()
			if err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			if !strings.Contains(stdout, "Certificate signed by") {
				t.Errorf("output:\n%s", stdout)
			}
			t.Logf("$ kubectl signet sign -f %s.yaml --out-dir certs\n%s", c.name, stdout)
			want := ca
			if c.issuerKind == "ClusterIssuer" {
				want = clusterCA
			}
			verifyIssued(t, dir, c, want)
		})
	}

	carol, err := env.cp.WriteUserKubeconfig("carol")
	if err != nil {
		t.Fatal(err)
	}
	c := keyCases("sign-", ns, "sign-ca", "")[0]
	dir := t.TempDir()
	_, stderr, err := startPlugin(t, carol, "sign", "-f", c.write(t), "--out-dir", dir).wait()
	if err == nil || !strings.Contains(stderr, `User "carol" cannot create resource "signers/sign" in API group "cert-manager.io" in the namespace "`+ns+`"`) {
		t.Errorf("sign without permission: %v\n%s", err, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written after a 403: %v", entries)
	}
}

// requireSignSubresource skips t when signet does not serve signers/sign:
// an empty request is then a 404 for the path rather than a rejection of
// the request.
func requireSignSubresource(t *testing.T, ns, name string) {
	t.Helper()
	_, err := env.signer.CertManagerV1alpha1().Signers(ns).Sign(context.Background(), name, &certmanagerv1alpha1.SigningRequest{}, metav1.CreateOptions{})
	var status apierrors.APIStatus
	if apierrors.IsNotFound(err) && errors.As(err, &status) {
		if d := status.Status().Details; d == nil || d.Name == "" {
			t.Skipf("signet does not serve the signers/sign subresource yet (POST .../namespaces/%s/signers/%s/sign: %v)", ns, name, err)
		}
	}
}
