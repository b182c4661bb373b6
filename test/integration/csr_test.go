package integration

import (
	"context"
	"crypto"
	"crypto/x509"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
)

func selfSignedSpec() map[string]interface{} {
	return map[string]interface{}{"selfSigned": map[string]interface{}{}}
}

func TestCAIssuerIssuesVerifiableCertificates(t *testing.T) {
	createNamespace(t, "csr-ca")
	ca := newCA(t, testpki.CAOptions{CommonName: "csr-ca root"})
	putCASecret(t, "csr-ca", "ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, "csr-ca", "ca", nil, caSpec("ca"))

	u, _ := url.Parse("spiffe://cluster.local/ns/csr-ca/sa/app")
	req := &csrRequest{
		signerName: "issuers.cert-manager.io/csr-ca.ca",
		commonName: "app.csr-ca.svc",
		dnsNames:   []string{"app.csr-ca.svc", "app.example.com"},
		ips:        []net.IP{net.ParseIP("10.1.2.3")},
		uris:       []*url.URL{u},
		emails:     []string{"app@example.com"},
		usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth},
		expiration: ptr.To[int32](3600),
	}
	name := createCSR(t, req)
	approve(t, name)
	o := mustIssue(t, name)
	leaf := o.certs[0]

	opensslVerify(t, ca.CertPEM(), o.csr.Status.Certificate)
	goVerify(t, ca.Cert, o.certs, x509.ExtKeyUsageServerAuth)
	goVerify(t, ca.Cert, o.certs, x509.ExtKeyUsageClientAuth)
	if !slices.Equal(leaf.DNSNames, req.dnsNames) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(req.ips[0]) ||
		len(leaf.URIs) != 1 || leaf.URIs[0].String() != u.String() || !slices.Equal(leaf.EmailAddresses, req.emails) || leaf.Subject.CommonName != "app.csr-ca.svc" {
		t.Errorf("SANs/subject not copied: %v %v %v %v %q", leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses, leaf.Subject)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 || leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 ||
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("usages = %v / %v", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA without the request-is-ca annotation")
	}
	// cert-manager's window: from the signing second, exactly the duration.
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != time.Hour {
		t.Errorf("expirationSeconds 3600 gave a certificate valid for %s (%s to %s)", life, leaf.NotBefore, leaf.NotAfter)
	}
	if since := time.Since(leaf.NotBefore); since < 0 || since > time.Minute {
		t.Errorf("NotBefore %s is not the signing time", leaf.NotBefore)
	}

	// The duration annotation wins over expirationSeconds.
	name = createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/csr-ca.ca", commonName: "dur",
		expiration: ptr.To[int32](3600), annotations: map[string]string{"experimental.cert-manager.io/request-duration": "2h"}})
	approve(t, name)
	if c := mustIssue(t, name).certs[0]; c.NotAfter.Sub(c.NotBefore) != 2*time.Hour {
		t.Errorf("request-duration 2h gave %s", c.NotAfter.Sub(c.NotBefore))
	}

	// A CA annotation request gets a CA certificate.
	name = createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/csr-ca.ca", commonName: "sub-ca",
		usages:      []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageCertSign},
		annotations: map[string]string{"experimental.cert-manager.io/request-is-ca": "true"}})
	approve(t, name)
	if c := mustIssue(t, name).certs[0]; !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("request-is-ca gave IsCA=%v keyUsage=%v", c.IsCA, c.KeyUsage)
	}
}

func TestCAClusterIssuerDropsTheRoot(t *testing.T) {
	createNamespace(t, "cert-manager")
	root := newCA(t, testpki.CAOptions{CommonName: "cluster root"})
	inter := newCA(t, testpki.CAOptions{CommonName: "cluster intermediate", Parent: root})
	ctx := context.Background()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "cert-manager", Name: "cluster-ca"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.crt": append(inter.CertPEM(), root.CertPEM()...), "tls.key": inter.KeyPEM(), "ca.crt": root.CertPEM(),
		},
	}
	if _, err := env.kube.CoreV1().Secrets("cert-manager").Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createIssuer(t, "", "cluster-ca", nil, caSpec("cluster-ca"))
	name := createCSR(t, &csrRequest{signerName: "clusterissuers.cert-manager.io/cluster-ca", commonName: "client"})
	approve(t, name)
	o := mustIssue(t, name)
	if len(o.certs) != 2 || o.certs[1].Subject.CommonName != "cluster intermediate" {
		var subjects []string
		for _, c := range o.certs {
			subjects = append(subjects, c.Subject.CommonName)
		}
		t.Fatalf("status.certificate = %v, want leaf + intermediate (root dropped)", subjects)
	}
	goVerify(t, root.Cert, o.certs, x509.ExtKeyUsageClientAuth)
	opensslVerify(t, root.CertPEM(), o.csr.Status.Certificate)
}

func TestSelfSignedIssuer(t *testing.T) {
	createNamespace(t, "csr-self")
	createIssuer(t, "csr-self", "self", nil, selfSignedSpec())
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	putCASecret(t, "csr-self", "app-key", nil, testpki.KeyPEM(key))
	name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/csr-self.self", commonName: "self", key: key,
		annotations: map[string]string{"experimental.cert-manager.io/private-key-secret-name": "app-key"}})
	approve(t, name)
	o := mustIssue(t, name)
	if o.certs[0].Subject.String() != o.certs[0].Issuer.String() {
		t.Errorf("subject %s != issuer %s", o.certs[0].Subject, o.certs[0].Issuer)
	}
	// CheckSignatureFrom insists the parent be a CA; a self-signed leaf is not.
	c := o.certs[0]
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("self signature: %v", err)
	}
	// The certificate is its own trust anchor.
	opensslVerify(t, o.csr.Status.Certificate, o.csr.Status.Certificate)
	if !issuersPublicKeyEqual(c, key) {
		t.Error("certificate is not for the requester's key")
	}
}

// TestKeyTypes signs requests of every key type with a P-256 CA, and a P-256
// request with CAs of every key type.
func TestKeyTypes(t *testing.T) {
	createNamespace(t, "csr-keys")
	all := []testpki.KeyType{testpki.RSA2048, testpki.RSA3072, testpki.RSA4096, testpki.ECDSAP256, testpki.ECDSAP384, testpki.ECDSAP521, testpki.Ed25519}
	type job struct {
		name   string
		caCert *x509.Certificate
		caPEM  []byte
	}
	var jobs []job
	p256 := newCA(t, testpki.CAOptions{})
	putCASecret(t, "csr-keys", "p256", p256.CertPEM(), p256.KeyPEM())
	createIssuer(t, "csr-keys", "p256", nil, caSpec("p256"))
	for _, kt := range all {
		n := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/csr-keys.p256", commonName: "request " + string(kt), keyType: kt})
		jobs = append(jobs, job{n, p256.Cert, p256.CertPEM()})
	}
	for _, kt := range all {
		secret := strings.ToLower(string(kt))
		ca := newCA(t, testpki.CAOptions{KeyType: kt, CommonName: "CA " + string(kt)})
		putCASecret(t, "csr-keys", secret, ca.CertPEM(), ca.KeyPEM())
		createIssuer(t, "csr-keys", secret, nil, caSpec(secret))
		n := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/csr-keys." + secret, commonName: "CA key " + string(kt)})
		jobs = append(jobs, job{n, ca.Cert, ca.CertPEM()})
	}
	for _, j := range jobs {
		approve(t, j.name)
	}
	for _, j := range jobs {
		o := mustIssue(t, j.name)
		goVerify(t, j.caCert, o.certs, x509.ExtKeyUsageClientAuth)
		opensslVerify(t, j.caPEM, o.csr.Status.Certificate)
	}
}

func TestNeverSignsUnapprovedDeniedOrFailed(t *testing.T) {
	signer := newCAIssuerNamespace(t, "csr-never", "ca")

	pending := createCSR(t, &csrRequest{signerName: signer, commonName: "pending"})
	denied := createCSR(t, &csrRequest{signerName: signer, commonName: "denied"})
	setCondition(t, denied, certificatesv1.CertificateDenied)
	failed := createCSR(t, &csrRequest{signerName: signer, commonName: "failed"})
	ctx := context.Background()
	csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, failed, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "ByTest"})
	if _, err := env.kube.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	approve(t, failed)
	// A control CSR approved after all of them is issued: by then the others had their chance.
	control := createCSR(t, &csrRequest{signerName: signer, commonName: "control"})
	approve(t, control)
	mustIssue(t, control)
	waitEvent(t, pending, "WaitingApproval")
	time.Sleep(2 * time.Second)
	for _, n := range []string{pending, denied, failed} {
		c, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Status.Certificate) > 0 {
			t.Errorf("%s was signed", n)
		}
	}
	if n := strings.Count(eventsFor(t, pending), "WaitingApproval"); n != 1 {
		t.Errorf("%d WaitingApproval events on %s, want 1", n, pending)
	}
}

// TestReferenceCheck: a requester needs reference on signers/<name> (or "*")
// in the issuer's namespace; cert-manager's documented Role works verbatim.
func TestReferenceCheck(t *testing.T) {
	signer := newCAIssuerNamespace(t, "sandbox", "my-issuer")

	// cert-manager's documentation's example Role, as published.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	docRole := `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cert-manager-referencer:my-issuer
  namespace: sandbox
rules:
- apiGroups: ["cert-manager.io"]
  resources: ["signers"]
  verbs: ["reference"]
  resourceNames:
  - "my-issuer" # To give permission to _only_ reference Issuers with the name 'my-issuer'
  - "*" # To give permission to reference Issuers with any name in this namespace
`
	if _, stderr, err := env.cp.KubectlWithInput(ctx, env.cp.KubeconfigPath, strings.NewReader(docRole), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the documented Role: %v: %s", err, stderr)
	}
	kubectl(t, "create", "rolebinding", "doc-alice", "-n", "sandbox", "--role=cert-manager-referencer:my-issuer", "--user=ref-alice")
	kubectl(t, "create", "role", "only-name", "-n", "sandbox", "--verb=reference", "--resource=signers.cert-manager.io", "--resource-name=my-issuer")
	kubectl(t, "create", "rolebinding", "only-name", "-n", "sandbox", "--role=only-name", "--user=ref-dave")
	kubectl(t, "create", "role", "only-star", "-n", "sandbox", "--verb=reference", "--resource=signers.cert-manager.io", "--resource-name=*")
	kubectl(t, "create", "rolebinding", "only-star", "-n", "sandbox", "--role=only-star", "--user=ref-carol")
	// Reference on another namespace's signers does not count.
	createNamespace(t, "elsewhere")
	kubectl(t, "create", "role", "wrong-ns", "-n", "elsewhere", "--verb=reference", "--resource=signers.cert-manager.io", "--resource-name=my-issuer")
	kubectl(t, "create", "rolebinding", "wrong-ns", "-n", "elsewhere", "--role=wrong-ns", "--user=ref-eve")

	names := map[string]string{}
	for _, user := range []string{"ref-alice", "ref-dave", "ref-carol", "ref-eve", "ref-mallory"} {
		names[user] = createCSR(t, &csrRequest{signerName: signer, commonName: user, as: user})
		approve(t, names[user])
	}
	for _, user := range []string{"ref-alice", "ref-dave", "ref-carol"} {
		mustIssue(t, names[user])
	}
	for _, user := range []string{"ref-eve", "ref-mallory"} {
		o := waitOutcome(t, names[user], 30*time.Second)
		if o.failed == nil || o.failed.Reason != "DeniedReference" || o.failed.Message != "Requester may not reference Namespaced Issuer sandbox/my-issuer" {
			t.Errorf("%s: outcome %+v, want Failed/DeniedReference", user, o.failed)
		}
		if len(o.csr.Status.Certificate) > 0 {
			t.Errorf("%s was issued", user)
		}
		waitEvent(t, names[user], "DeniedReference")
	}
}

func issuersPublicKeyEqual(c *x509.Certificate, key interface{ Public() crypto.PublicKey }) bool {
	pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

// TestWaitingApprovalEventOnlyAfterTheDelay: a CSR approved within
// --waiting-approval-event-delay is issued with no WaitingApproval event; one
// still pending after it gets exactly one, not before the delay.
func TestWaitingApprovalEventOnlyAfterTheDelay(t *testing.T) {
	const delay = 4 * time.Second
	signer := newCAIssuerNamespace(t, "csr-waiting", "ca")

	withSignet(t, []string{"--waiting-approval-event-delay=" + delay.String()}, func() {
		quick := createCSR(t, &csrRequest{signerName: signer, commonName: "quick"})
		pending := createCSR(t, &csrRequest{signerName: signer, commonName: "pending"})
		created := time.Now()
		approve(t, quick)
		mustIssue(t, quick)

		waitEvent(t, pending, "WaitingApproval")
		// creationTimestamp has whole seconds: the event may come up to a
		// second early, never sooner.
		if waited := time.Since(created); waited < delay-time.Second {
			t.Errorf("WaitingApproval on %s after %s, before the %s delay", pending, waited, delay)
		}
		time.Sleep(2 * time.Second)
		if n := strings.Count(eventsFor(t, pending), "WaitingApproval"); n != 1 {
			t.Errorf("%d WaitingApproval events on %s, want 1", n, pending)
		}
		if ev := eventsFor(t, quick); strings.Contains(ev, "WaitingApproval") {
			t.Errorf("%s, approved within the delay, has a WaitingApproval event:\n%s", quick, ev)
		}
	})
}

// TestCertificateIssuedEventsOnlyWithTheFlag: by default an issued CSR gets
// no CertificateIssued event (its status says so); with
// --certificate-issued-events it gets one, as with cert-manager.
func TestCertificateIssuedEventsOnlyWithTheFlag(t *testing.T) {
	signer := newCAIssuerNamespace(t, "csr-events", "ca")

	quiet := createCSR(t, &csrRequest{signerName: signer, commonName: "quiet"})
	approve(t, quiet)
	mustIssue(t, quiet)
	withSignet(t, []string{"--certificate-issued-events"}, func() {
		loud := createCSR(t, &csrRequest{signerName: signer, commonName: "loud"})
		approve(t, loud)
		mustIssue(t, loud)
		waitEvent(t, loud, "CertificateIssued")
	})
	// By now the default signet's events for quiet, had there been any, are written.
	if ev := eventsFor(t, quiet); strings.Contains(ev, "CertificateIssued") {
		t.Errorf("%s has a CertificateIssued event without --certificate-issued-events:\n%s", quiet, ev)
	}
}
