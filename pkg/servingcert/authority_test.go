package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

const apiService = "v1alpha1.cert-manager.io"

type countingListener struct{ n int }

func (l *countingListener) Enqueue() { l.n++ }

func newTestAuthority(t *testing.T, withAPIService bool) (*Authority, *aggregatorfake.Clientset, *clocktesting.FakeClock) {
	t.Helper()
	client := aggregatorfake.NewSimpleClientset()
	if withAPIService {
		if _, err := client.ApiregistrationV1().APIServices().Create(context.Background(),
			&apiregistrationv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: apiService}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	a, err := newWithClock(Options{Host: "signet.signet-system.svc", DNSNames: []string{"signet.signet-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		CAValidity: 30 * time.Hour, CertValidity: 3 * time.Hour, APIService: apiService, SyncPeriod: time.Minute},
		client.ApiregistrationV1().APIServices(), clk)
	if err != nil {
		t.Fatal(err)
	}
	return a, client, clk
}

func bundle(t *testing.T, c *aggregatorfake.Clientset) []byte {
	t.Helper()
	s, err := c.ApiregistrationV1().APIServices().Get(context.Background(), apiService, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.CABundle
}

// servingVerifies checks the current serving certificate against roots, for
// the Service name kube-apiserver dials, at the fake clock's time.
func servingVerifies(t *testing.T, a *Authority, roots []byte, at time.Time) error {
	t.Helper()
	certPEM, keyPEM := a.CurrentCertKeyContent()
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("serving certificate and key do not pair: %v", err)
	}
	b, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "signet.signet-system.svc", CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func TestAuthorityPublishesBeforeReady(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	if err := a.PublishedCheck().Check(nil); err == nil {
		t.Fatal("ready before the CA was published")
	}
	a.step(context.Background())
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Fatalf("not ready after publishing: %v", err)
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("serving certificate does not verify against the published caBundle: %v", err)
	}
}

func TestAuthorityMissingAPIServiceIsNamedInReadyz(t *testing.T) {
	a, _, _ := newTestAuthority(t, false)
	a.step(context.Background())
	err := a.PublishedCheck().Check(nil)
	if err == nil || !strings.Contains(err.Error(), "APIService "+apiService+" does not exist") {
		t.Errorf("readyz error = %v, want it to name the missing APIService", err)
	}
}

func TestAuthorityRenewsServingCertificate(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	l := &countingListener{}
	a.AddListener(l)
	a.step(context.Background())
	before, _ := a.CurrentCertKeyContent()
	clk.Step(2*time.Hour + time.Minute) // past two thirds of 3h
	a.step(context.Background())
	after, _ := a.CurrentCertKeyContent()
	if string(before) == string(after) || l.n == 0 {
		t.Fatalf("serving certificate not renewed after two thirds of its life (listeners told %d times)", l.n)
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("renewed certificate does not verify: %v", err)
	}
}

func TestAuthorityRotatesCAOnlyAfterPublishing(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	ctx := context.Background()
	a.step(ctx)
	oldCA := a.CAPEM()
	clk.Step(20*time.Hour + time.Minute) // past two thirds of the CA's 30h
	a.step(ctx)
	// The next CA is in the bundle beside the old one; the old one still signs.
	if n := strings.Count(string(bundle(t, client)), "BEGIN CERTIFICATE"); n != 2 {
		t.Fatalf("bundle holds %d CAs during the rotation, want 2", n)
	}
	if string(a.CAPEM()) != string(oldCA) {
		t.Fatal("switched to the next CA before kube-apiserver could have seen it")
	}
	clk.Step(a.propagation())
	a.step(ctx)
	if string(a.CAPEM()) == string(oldCA) {
		t.Fatal("still signing with the old CA after the propagation delay")
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("certificate from the next CA does not verify against the bundle: %v", err)
	}
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Errorf("not ready after the rotation: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{CAValidity: 0, CertValidity: time.Hour},
		{CAValidity: time.Hour, CertValidity: 2 * time.Hour},
		{CAValidity: time.Hour, CertValidity: time.Hour, APIService: apiService, SyncPeriod: time.Minute}, // no client
	} {
		if _, err := New(o, nil); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
