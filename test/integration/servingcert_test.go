package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/signet-dev/signet/pkg/servingcert"
	"github.com/signet-dev/signet/test/framework"
)

// TestSelfManagedServingCA: without --tls-cert-file signet generates its
// serving CA, puts it in the APIService's caBundle with a heartbeat, and
// kube-apiserver then trusts it: the APIService is Available and signers
// are served through the aggregator. The framework's own serving CA, which
// the shared signet used, does not sign signet's new certificate, so none of
// this works unless signet published its CA.
func TestSelfManagedServingCA(t *testing.T) {
	ctx := context.Background()
	apiServices := aggregator.NewForConfigOrDie(env.cp.AdminConfig).ApiregistrationV1().APIServices()
	opts := framework.SignetOptions{SelfManagedServing: true,
		ExtraArgs: append(append([]string{}, baseSignetArgs...), "--serving-ca-sync-period=1s")}
	withSignetAs(t, opts, func(s *framework.Signet) {
		svc, err := apiServices.Get(ctx, framework.SignetVersion+"."+framework.SignetGroup, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var heartbeats []string
		for k := range svc.Annotations {
			if strings.HasPrefix(k, servingcert.HeartbeatPrefix) {
				heartbeats = append(heartbeats, k)
			}
		}
		if len(heartbeats) != 1 {
			t.Errorf("heartbeat annotations %v, want one for this replica's CA", heartbeats)
		}

		// The certificate signet serves chains to a CA in the bundle that is
		// not the framework's.
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
		if err != nil {
			t.Fatal(err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(svc.Spec.CABundle) {
			t.Fatal("caBundle holds no certificate")
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: framework.SignetServiceName + "." + framework.SignetNamespace + ".svc"}); err != nil {
			t.Errorf("signet's serving certificate does not verify against the caBundle: %v", err)
		}
		if b, _ := pem.Decode(env.cp.PKI.SignetCA.CertPEM); b != nil && bytes.Equal(leaf.RawIssuer, mustParse(t, b.Bytes).RawSubject) {
			t.Error("signet still serves the framework's certificate")
		}
		if _, err := env.signer.CertManagerV1alpha1().Signers("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list signers through kube-apiserver: %v", err)
		}
		if leaf.NotAfter.Sub(time.Now()) > 31*24*time.Hour {
			t.Errorf("serving certificate valid until %s, longer than the 30-day default", leaf.NotAfter)
		}
	})
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
