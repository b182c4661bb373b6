package integration

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/controller/trustbundles"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

// TestPodCertificateForEveryKeyType: a pod's kubelet asks for a certificate
// with each key type kube-apiserver accepts; each is issued with the pod's
// SPIFFE ID, for maxExpirationSeconds, and verifies against the
// ClusterTrustBundle signet publishes for the signer.
func TestPodCertificateForEveryKeyType(t *testing.T) {
	const ns = "pcr-keys"
	root := newCA(t, testpki.CAOptions{CommonName: "pcr-keys root", KeyType: testpki.RSA3072})
	createNamespace(t, ns)
	putCASecret(t, ns, "ca", root.CertPEM(), root.KeyPEM())
	createIssuer(t, ns, "ca", nil, caSpec("ca"))
	signer := "issuers.cert-manager.io/" + ns + ".ca"
	allowReference(t, ns, "web", ns, "ca")
	anchors := waitTrustBundle(t, signer, root.Cert)

	for _, tc := range []struct {
		keyType  string
		maxSecs  *int32
		lifetime time.Duration
	}{
		{"RSA3072", ptr.To[int32](3600), time.Hour},
		{"RSA4096", ptr.To[int32](7200), 2 * time.Hour},
		{"ECDSAP256", nil, 24 * time.Hour}, // kube-apiserver's default maxExpirationSeconds
		{"ECDSAP384", ptr.To[int32](86400), 24 * time.Hour},
		{"ECDSAP521", ptr.To[int32](3600), time.Hour},
		{"ED25519", ptr.To[int32](7862400), 91 * 24 * time.Hour},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			pod := createCertPod(t, ns, "web-"+strings.ToLower(tc.keyType), "web", corev1.PodCertificateProjection{
				SignerName: signer, KeyType: tc.keyType, MaxExpirationSeconds: tc.maxSecs,
			})
			key, pcr := requestPodCertificate(t, pod)
			if pcr.Spec.MaxExpirationSeconds == nil {
				t.Fatal("kube-apiserver did not default maxExpirationSeconds")
			}
			chain := issuedPodCertificate(t, waitFinished(t, ns, pcr.Name), key, anchors, tc.lifetime)
			if len(chain) != 1 {
				t.Errorf("chain of %d certificates; a root CA issuer's is the leaf alone", len(chain))
			}
		})
	}

	// An intermediate CA: the chain carries it, the bundle the root.
	t.Run("IntermediateCA", func(t *testing.T) {
		inter := newCA(t, testpki.CAOptions{CommonName: "pcr-keys intermediate", Parent: root})
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "intermediate"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": inter.CertPEM(), "tls.key": inter.KeyPEM(), "ca.crt": root.CertPEM()},
		}
		if _, err := env.kube.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		createIssuer(t, ns, "intermediate", nil, caSpec("intermediate"))
		interSigner := "issuers.cert-manager.io/" + ns + ".intermediate"
		allowReference(t, ns, "web", ns, "intermediate")
		anchors := waitTrustBundle(t, interSigner, root.Cert)
		pod := createCertPod(t, ns, "web-intermediate", "web", corev1.PodCertificateProjection{SignerName: interSigner, KeyType: "ECDSAP256"})
		key, pcr := requestPodCertificate(t, pod)
		chain := issuedPodCertificate(t, waitFinished(t, ns, pcr.Name), key, anchors, 24*time.Hour)
		if len(chain) != 2 || !chain[1].Equal(inter.Cert) {
			t.Errorf("chain of %d certificates, want the leaf and the intermediate", len(chain))
		}
	})
}

// TestPodCertificateDenied: signet is the only gate between a pod and a
// signer, and says why it refuses.
func TestPodCertificateDenied(t *testing.T) {
	const ns, other = "pcr-deny", "pcr-deny-other"
	signer := newCAIssuerNamespace(t, ns, "ca")
	createNamespace(t, other)
	allowReference(t, ns, "web", ns, "ca")
	// other's ServiceAccount may reference the Issuer: only the namespace
	// rule stands in its way.
	allowReference(t, other, "web", ns, "ca")

	root := newCA(t, testpki.CAOptions{CommonName: "pcr-deny cluster CA"})
	createNamespace(t, "cert-manager")
	putCASecret(t, "cert-manager", "pcr-deny-root", root.CertPEM(), root.KeyPEM())
	createIssuer(t, "", "pcr-deny-root", nil, caSpec("pcr-deny-root"))
	clusterSigner := "clusterissuers.cert-manager.io/pcr-deny-root"
	allowClusterReference(t, ns, "trusted", "pcr-deny-root")

	for _, tc := range []struct {
		name, ns, sa string
		source       corev1.PodCertificateProjection
		condition    string
		reason       string
		message      string
	}{
		{"WithoutReference", ns, "nobody", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256"},
			"Denied", "DeniedReference", `ServiceAccount pcr-deny/nobody may not reference Namespaced Issuer pcr-deny/ca: grant it the "reference" verb on signers.cert-manager.io/ca in namespace pcr-deny`},
		{"FromAnotherNamespace", other, "web", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256"},
			"Denied", "DeniedNamespace", "pod in namespace pcr-deny-other may not use Issuer pcr-deny/ca: a namespaced Issuer signs only for pods in its own namespace (use a ClusterIssuer to serve several namespaces)"},
		{"UnknownUserAnnotation", ns, "web", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256",
			UserAnnotations: map[string]string{"example.com/dns-names": "web.pcr-deny.svc"}},
			"Denied", "InvalidUnverifiedUserAnnotations", `unknown unverifiedUserAnnotations key(s) "example.com/dns-names"; signet supports no unverifiedUserAnnotations keys: remove them from the podCertificate volume's userAnnotations`},
		{"ClusterIssuerWithoutReference", ns, "web", corev1.PodCertificateProjection{SignerName: clusterSigner, KeyType: "ECDSAP256"},
			"Denied", "DeniedReference", `ServiceAccount pcr-deny/web may not reference ClusterIssuer pcr-deny-root: grant it the "reference" verb on clustersigners.cert-manager.io/pcr-deny-root`},
		{"ClusterIssuerWithReference", ns, "trusted", corev1.PodCertificateProjection{SignerName: clusterSigner, KeyType: "ECDSAP256"},
			"Issued", "Issued", "Issued by ClusterIssuer pcr-deny-root for spiffe://cluster.local/ns/pcr-deny/sa/trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := createCertPod(t, tc.ns, "pod-"+strings.ToLower(tc.name), tc.sa, tc.source)
			_, pcr := requestPodCertificate(t, pod)
			got := waitFinished(t, tc.ns, pcr.Name)
			c := got.Status.Conditions[0]
			if len(got.Status.Conditions) != 1 || c.Type != tc.condition || c.Reason != tc.reason || c.Message != tc.message {
				t.Fatalf("conditions %+v, want one %s/%s %q", got.Status.Conditions, tc.condition, tc.reason, tc.message)
			}
			if tc.condition == "Issued" {
				return
			}
			if got.Status.CertificateChain != "" {
				t.Error("a denied request has a certificate")
			}
			eventually(t, "a Warning "+tc.reason+" event on the request", func() (bool, error) {
				return strings.Contains(pcrEvents(t, tc.ns, pcr.Name), "Warning "+tc.reason+": "+tc.message), nil
			})
		})
	}
}

// TestPodCertificateCARotation: the issuer's CA is replaced; the bundle holds
// both CAs, so that the certificates from the old one — a pod's and a CSR's —
// still verify, and keeps them across a restart; the bundle goes with the
// issuer.
func TestPodCertificateCARotation(t *testing.T) {
	const ns = "pcr-rotate"
	ca1 := newCA(t, testpki.CAOptions{CommonName: "pcr-rotate CA 1"})
	createNamespace(t, ns)
	putCASecret(t, ns, "ca", ca1.CertPEM(), ca1.KeyPEM())
	createIssuer(t, ns, "ca", nil, caSpec("ca"))
	signer := "issuers.cert-manager.io/" + ns + ".ca"
	allowReference(t, ns, "web", ns, "ca")
	waitTrustBundle(t, signer, ca1.Cert)

	issue := func(pod string) []*x509.Certificate {
		t.Helper()
		p := createCertPod(t, ns, pod, "web", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256", MaxExpirationSeconds: ptr.To[int32](7200)})
		key, pcr := requestPodCertificate(t, p)
		pcr = waitFinished(t, ns, pcr.Name)
		return issuedPodCertificate(t, pcr, key, podTrustBundle(t, signer), 2*time.Hour)
	}
	leaf1 := issue("web-1")[0]

	// What signet recorded before it signed: ca1 stays at least until leaf1 expires.
	bundle, err := env.kube.CertificatesV1().ClusterTrustBundles().Get(context.Background(), trustbundles.Name(signer), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bundle.Name != "issuers.cert-manager.io:pcr-rotate.ca:ca" || bundle.Spec.SignerName != signer {
		t.Errorf("bundle %s for %s", bundle.Name, bundle.Spec.SignerName)
	}
	until := trustbundles.ParseIssuedUntil(bundle.Annotations)[trustbundles.Fingerprint(ca1.Cert)]
	if until.Before(leaf1.NotAfter) {
		t.Fatalf("bundle records CA 1 until %s, before the certificate it issued expires (%s); annotations %v", until, leaf1.NotAfter, bundle.Annotations)
	}
	// A CSR's certificate from CA 1, longer-lived than the pod's, is recorded too.
	csrName := createCSR(t, &csrRequest{signerName: signer, commonName: "rotate-csr", annotations: map[string]string{"experimental.cert-manager.io/request-duration": "720h"}})
	approve(t, csrName)
	csrLeaf := mustIssue(t, csrName).certs[0]
	eventually(t, "CA 1 recorded until the CSR's certificate expires", func() (bool, error) {
		b, err := env.kube.CertificatesV1().ClusterTrustBundles().Get(context.Background(), trustbundles.Name(signer), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return !trustbundles.ParseIssuedUntil(b.Annotations)[trustbundles.Fingerprint(ca1.Cert)].Before(csrLeaf.NotAfter), nil
	})

	ca2 := newCA(t, testpki.CAOptions{CommonName: "pcr-rotate CA 2"})
	putCASecret(t, ns, "ca", ca2.CertPEM(), ca2.KeyPEM())
	anchors := waitTrustBundle(t, signer, ca1.Cert, ca2.Cert)
	chain2 := issue("web-2")
	if err := chain2[0].CheckSignatureFrom(ca2.Cert); err != nil {
		t.Errorf("after rotation the certificate is not from CA 2: %v", err)
	}
	verifies := func(leaf *x509.Certificate, anchors []*x509.Certificate) error {
		roots := x509.NewCertPool()
		for _, a := range anchors {
			roots.AddCert(a)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	if err := verifies(leaf1, anchors); err != nil {
		t.Errorf("the certificate from CA 1 no longer verifies against the bundle after rotation: %v", err)
	}
	if err := verifies(csrLeaf, anchors); err != nil {
		t.Errorf("the CSR's certificate from CA 1 no longer verifies against the bundle after rotation: %v", err)
	}

	// A restart forgets nothing: the new leader keeps both CAs.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.signet.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	issue("web-3") // taken up by the restarted leader
	anchors = waitTrustBundle(t, signer, ca1.Cert, ca2.Cert)
	if err := verifies(leaf1, anchors); err != nil {
		t.Errorf("after a restart the certificate from CA 1 no longer verifies: %v", err)
	}

	// The issuer goes, and its bundle with it.
	if err := env.dyn.Resource(issuers.IssuerGVR).Namespace(ns).Delete(ctx, "ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted issuer's ClusterTrustBundle to go", func() (bool, error) {
		_, err := env.kube.CertificatesV1().ClusterTrustBundles().Get(ctx, trustbundles.Name(signer), metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// TestPodCertificateBurstSurvivesSIGKILL: signet is SIGKILLed while kubelet
// creates 300 PodCertificateRequests; the restarted signet takes over and
// every request is issued, each exactly once.
func TestPodCertificateBurstSurvivesSIGKILL(t *testing.T) {
	const ns, n = "pcr-burst", 300
	signer := newCAIssuerNamespace(t, ns, "ca")
	allowReference(t, ns, "web", ns, "ca")
	pod := createCertPod(t, ns, "web-0", "web", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256"})
	requestPodCertificate(t, pod) // the node's caches know the pod from here on

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	writes := watchPodCertificates(ctx, t, ns)

	var created atomic.Int32
	var createErrs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	src := pod.Spec.Volumes[0].Projected.Sources[0].PodCertificate
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if _, _, err := kubelet(t).RequestPodCertificate(ctx, pod, src); err != nil {
					mu.Lock()
					createErrs = append(createErrs, err)
					mu.Unlock()
					return
				}
				created.Add(1)
			}
		})
	}

	// Kill once a fifth is issued, while requests are still being created.
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return writes.issued() >= n/5, nil
	})
	if err != nil {
		t.Fatalf("only %d issued before the kill deadline", writes.issued())
	}
	env.signet.Kill()
	issuedAtKill, createdAtKill := writes.issued(), created.Load()
	killedAt := time.Now()
	wg.Wait()
	if len(createErrs) > 0 {
		t.Fatalf("creating requests as the node: %v", createErrs[0])
	}
	if err := env.signet.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return writes.issued() >= n+1, nil
	})
	doneAt := time.Now()
	t.Logf("%d requests (+1 before the burst): %d issued and %d created when signet was SIGKILLed; all issued %s after the kill",
		n, issuedAtKill, createdAtKill, doneAt.Sub(killedAt).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%d of %d issued: %v", writes.issued(), n+1, err)
	}
	if issuedAtKill >= n+1 {
		t.Fatal("the burst was issued before the kill: nothing was tested")
	}
	if err := writes.watchErr(); err != nil {
		t.Fatal(err)
	}
	list, err := env.kube.CertificatesV1().PodCertificateRequests(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != n+1 {
		t.Fatalf("%d requests in %s, want %d", len(list.Items), ns, n+1)
	}
	for _, p := range list.Items {
		if len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Type != certificatesv1.PodCertificateRequestConditionTypeIssued {
			t.Errorf("%s: conditions %+v", p.Name, p.Status.Conditions)
		}
		if first := writes.first(p.Name); first != p.Status.CertificateChain {
			t.Errorf("%s: the certificate changed after it was first written", p.Name)
		}
	}
	if changed := writes.changedNames(); len(changed) > 0 {
		t.Errorf("%d requests were written more than one certificate: %v", len(changed), changed)
	}
}

// podCertificateWrites records, from a watch, the first certificate chain
// written to each request and any later write that changes it.
type podCertificateWrites struct {
	mu      sync.Mutex
	chains  map[string]string
	changed []string
	err     error
}

func watchPodCertificates(ctx context.Context, t *testing.T, ns string) *podCertificateWrites {
	t.Helper()
	w, err := env.kube.CertificatesV1().PodCertificateRequests(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	pw := &podCertificateWrites{chains: map[string]string{}}
	go func() {
		for e := range w.ResultChan() {
			pw.mu.Lock()
			switch p, ok := e.Object.(*certificatesv1.PodCertificateRequest); {
			case e.Type == watch.Error:
				pw.err = fmt.Errorf("watch error: %v", e.Object)
			case ok && e.Type != watch.Deleted && p.Status.CertificateChain != "":
				if prev, seen := pw.chains[p.Name]; !seen {
					pw.chains[p.Name] = p.Status.CertificateChain
				} else if prev != p.Status.CertificateChain {
					pw.changed = append(pw.changed, p.Name)
				}
			}
			pw.mu.Unlock()
		}
		pw.mu.Lock()
		if ctx.Err() == nil && pw.err == nil {
			pw.err = fmt.Errorf("watch closed by the server")
		}
		pw.mu.Unlock()
	}()
	return pw
}

func (pw *podCertificateWrites) issued() int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return len(pw.chains)
}

func (pw *podCertificateWrites) first(name string) string {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.chains[name]
}

func (pw *podCertificateWrites) changedNames() []string {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return append([]string(nil), pw.changed...)
}

func (pw *podCertificateWrites) watchErr() error {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.err
}

// TestPodCertificateFlags: --pod-certificate-trust-domain names the SPIFFE
// trust domain; --pod-certificates=false and --cluster-trust-bundles=false
// switch both controllers off.
func TestPodCertificateFlags(t *testing.T) {
	const ns = "pcr-flags"
	signer := newCAIssuerNamespace(t, ns, "ca")
	allowReference(t, ns, "web", ns, "ca")

	withSignet(t, []string{"--pod-certificate-trust-domain=prod.example.org"}, func() {
		pod := createCertPod(t, ns, "web-td", "web", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256"})
		_, pcr := requestPodCertificate(t, pod)
		pcr = waitFinished(t, ns, pcr.Name)
		chain, err := signers.ParseCertificates([]byte(pcr.Status.CertificateChain))
		if err != nil {
			t.Fatalf("%v (conditions %+v)", err, pcr.Status.Conditions)
		}
		if got := chain[0].URIs; len(got) != 1 || got[0].String() != "spiffe://prod.example.org/ns/pcr-flags/sa/web" {
			t.Errorf("URIs %v, want spiffe://prod.example.org/ns/pcr-flags/sa/web", got)
		}
	})

	withSignet(t, []string{"--pod-certificates=false", "--cluster-trust-bundles=false"}, func() {
		createIssuer(t, ns, "later", nil, caSpec("ca"))
		allowReference(t, ns, "web", ns, "later")
		later := "issuers.cert-manager.io/" + ns + ".later"
		pod := createCertPod(t, ns, "web-off", "web", corev1.PodCertificateProjection{SignerName: later, KeyType: "ECDSAP256"})
		_, pcr := requestPodCertificate(t, pod)
		// The CSR controller runs: a CSR to the same signer is issued meanwhile.
		name := createCSR(t, &csrRequest{signerName: later, commonName: "flags-off"})
		approve(t, name)
		mustIssue(t, name)
		got, err := env.kube.CertificatesV1().PodCertificateRequests(ns).Get(context.Background(), pcr.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) != 0 {
			t.Errorf("--pod-certificates=false: conditions %+v, want none", got.Status.Conditions)
		}
		if b := podTrustBundle(t, later); len(b) != 0 {
			t.Errorf("--cluster-trust-bundles=false: a bundle for a new issuer holds %d CAs", len(b))
		}
	})
}
