package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
)

// The validity rules of issue 11, through kube-apiserver: cert-manager's
// (exactly the requested duration, even past the CA) by default, and
// kube-controller-manager's cap with --cap-to-ca-expiry.

const hours896 = 896 * time.Hour

// shortLivedCAIssuer creates a CA Issuer ns/name whose CA expires in two
// minutes and waits until its signer is ready.
func shortLivedCAIssuer(t *testing.T, ns, name string) *testpki.CA {
	t.Helper()
	createNamespace(t, ns)
	ca := newCA(t, testpki.CAOptions{CommonName: name + " CA", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Minute)})
	putCASecret(t, ns, name, ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, ns, name, nil, caSpec(name))
	eventually(t, "signer "+ns+"/"+name+" ready", func() (bool, error) {
		s, err := env.signer.CertManagerV1alpha1().Signers(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && len(s.Status.Conditions) > 0 && s.Status.Conditions[0].Status == metav1.ConditionTrue, err
	})
	return ca
}

// pastCAExpiry reads signet_certificates_past_ca_expiry_total{issuer_kind="Issuer"}
// from the running signet (0 before the first such certificate).
func pastCAExpiry(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(env.signet.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, `signet_certificates_past_ca_expiry_total{issuer_kind="Issuer"} `) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return int(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return 0
}

// sign896h asks ns/name's sign subresource for an 896h certificate.
func sign896h(t *testing.T, ns, name string) *v1alpha1.SigningRequest {
	t.Helper()
	sr := &v1alpha1.SigningRequest{Spec: v1alpha1.SigningRequestSpec{
		Request:           pkcs10(t, &csrRequest{commonName: "sync 896h"}),
		ExpirationSeconds: ptr.To(int32(hours896 / time.Second)),
	}}
	out, err := env.signer.CertManagerV1alpha1().Signers(ns).Sign(context.Background(), name, sr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("signers/sign on %s/%s: %v", ns, name, err)
	}
	return out
}

func shortLivedCACondition(t *testing.T, ns, name string) metav1.Condition {
	t.Helper()
	s, err := env.signer.CertManagerV1alpha1().Signers(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Status.Conditions {
		if c.Type == v1alpha1.SignerConditionShortLivedCA {
			return c
		}
	}
	t.Fatalf("signer %s/%s has no %s condition: %+v", ns, name, v1alpha1.SignerConditionShortLivedCA, s.Status.Conditions)
	return metav1.Condition{}
}

// TestValidityPastAShortLivedCA: a CA that expires in two minutes signs
// 896h certificates for 896h, on both paths, says so in its status, and
// counts them.
func TestValidityPastAShortLivedCA(t *testing.T) {
	ca := shortLivedCAIssuer(t, "validity", "short")
	before := pastCAExpiry(t)

	name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/validity.short", commonName: "csr 896h",
		annotations: map[string]string{"experimental.cert-manager.io/request-duration": "896h"}})
	approve(t, name)
	leaf := mustIssue(t, name).certs[0]
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != hours896 {
		t.Errorf("CSR: NotAfter - NotBefore = %s, want exactly 896h", got)
	}
	if !leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("CSR: NotAfter %s was shortened to the CA's %s", leaf.NotAfter, ca.Cert.NotAfter)
	}

	out := sign896h(t, "validity", "short")
	sync := parsePEMCerts(t, out.Status.Certificate)[0]
	if got := sync.NotAfter.Sub(sync.NotBefore); got != hours896 || !sync.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("signers/sign: %s to %s (%s), want exactly 896h, past the CA's %s", sync.NotBefore, sync.NotAfter, got, ca.Cert.NotAfter)
	}
	if !out.Status.NotBefore.Time.Equal(sync.NotBefore) || !out.Status.NotAfter.Time.Equal(sync.NotAfter) {
		t.Errorf("signers/sign status says %s to %s, the certificate %s to %s", out.Status.NotBefore, out.Status.NotAfter, sync.NotBefore, sync.NotAfter)
	}

	if after := pastCAExpiry(t); after != before+2 {
		t.Errorf("signet_certificates_past_ca_expiry_total{issuer_kind=\"Issuer\"} went from %d to %d, want +2 (one CSR, one sign)", before, after)
	}

	c := shortLivedCACondition(t, "validity", "short")
	if c.Status != metav1.ConditionTrue || c.Reason != "CAExpiresWithinDefaultDuration" ||
		!strings.Contains(c.Message, ca.Cert.NotAfter.UTC().Format(time.RFC3339)) || !strings.Contains(c.Message, "cert-manager's rule") {
		t.Errorf("ShortLivedCA condition = %+v", c)
	}
	// kubectl get -o wide shows it: ... AGE SHORT-LIVED-CA REASON MESSAGE...
	out2 := kubectl(t, "get", "signers", "-n", "validity", "-o", "wide")
	header := strings.SplitN(out2, "\n", 2)[0]
	row, ok := rows(out2, 1)["short"]
	if !strings.Contains(header, "SHORT-LIVED CA") || !ok || len(row) < 8 || row[6] != "True" || row[7] != "Ready" {
		t.Errorf("kubectl get signers -o wide, want SHORT-LIVED CA True:\n%s", out2)
	}
	t.Logf("kubectl get signers -n validity -o wide:\n%s", out2)

	// A SelfSigned certificate is exact too: expirationSeconds 3333 is 55m33s.
	createIssuer(t, "validity", "self", nil, selfSignedSpec())
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	putCASecret(t, "validity", "self-key", nil, testpki.KeyPEM(key))
	name = createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/validity.self", commonName: "self 3333s", key: key, expiration: ptr.To[int32](3333),
		annotations: map[string]string{"experimental.cert-manager.io/private-key-secret-name": "self-key"}})
	approve(t, name)
	self := mustIssue(t, name).certs[0]
	if got := self.NotAfter.Sub(self.NotBefore); got != 55*time.Minute+33*time.Second {
		t.Errorf("SelfSigned, expirationSeconds 3333: NotAfter - NotBefore = %s, want exactly 55m33s", got)
	}
}

// TestCapToCAExpiry: with --cap-to-ca-expiry, the same requests end with
// the CA, and the status says certificates are shortened.
func TestCapToCAExpiry(t *testing.T) {
	withSignet(t, []string{"--cap-to-ca-expiry"}, func() {
		// The CA is made after the restart so that it still has its two minutes.
		ca := shortLivedCAIssuer(t, "validity-cap", "short")
		start := time.Now().Truncate(time.Second)
		name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/validity-cap.short", commonName: "csr 896h",
			annotations: map[string]string{"experimental.cert-manager.io/request-duration": "896h"}})
		approve(t, name)
		leaf := mustIssue(t, name).certs[0]
		if !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
			t.Errorf("CSR: NotAfter %s, want the CA's %s", leaf.NotAfter, ca.Cert.NotAfter)
		}
		if leaf.NotBefore.Before(start) {
			t.Errorf("CSR: NotBefore %s before the request at %s", leaf.NotBefore, start)
		}

		out := sign896h(t, "validity-cap", "short")
		sync := parsePEMCerts(t, out.Status.Certificate)[0]
		if !sync.NotAfter.Equal(ca.Cert.NotAfter) || !out.Status.NotAfter.Time.Equal(ca.Cert.NotAfter) {
			t.Errorf("signers/sign: NotAfter %s (status %s), want the CA's %s", sync.NotAfter, out.Status.NotAfter, ca.Cert.NotAfter)
		}
		if n := pastCAExpiry(t); n != 0 {
			t.Errorf("signet_certificates_past_ca_expiry_total = %d with --cap-to-ca-expiry, want 0", n)
		}

		c := shortLivedCACondition(t, "validity-cap", "short")
		if c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "shortened to end with the CA (--cap-to-ca-expiry)") {
			t.Errorf("ShortLivedCA condition = %+v", c)
		}
	})
}

// TestKubectlGetCertManagerListsSigners: signers and clustersigners are in
// the cert-manager category, beside the Issuer CRDs.
func TestKubectlGetCertManagerListsSigners(t *testing.T) {
	newCAIssuerNamespace(t, "category", "ca")
	createIssuer(t, "", "category-self", nil, selfSignedSpec())
	var out string
	eventually(t, "kubectl get cert-manager -A to list the signers", func() (bool, error) {
		o, stderr, err := env.cp.Kubectl(context.Background(), "get", "cert-manager", "-A")
		if err != nil {
			return false, fmt.Errorf("%v: %s", err, stderr)
		}
		out = o
		return strings.Contains(o, "signer.cert-manager.io/ca") && strings.Contains(o, "clustersigner.cert-manager.io/category-self") &&
			strings.Contains(o, "issuer.cert-manager.io/ca") && strings.Contains(o, "clusterissuer.cert-manager.io/category-self"), nil
	})
	t.Logf("kubectl get cert-manager -A:\n%s", out)
}
