package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	apiService  = "v1alpha1.cert-manager.io"
	serviceName = "signet.signet-system.svc"
	syncPeriod  = time.Minute
	caValidity  = 30 * time.Hour
	// certValidity: renewed at 2h.
	certValidity = 3 * time.Hour
)

var start = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

type countingListener struct{ n atomic.Int32 }

func (l *countingListener) Enqueue() { l.n.Add(1) }

func testOptions() Options {
	return Options{Host: serviceName, DNSNames: []string{serviceName, serviceName + ".cluster.local", "localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		CAValidity: caValidity, CertValidity: certValidity, APIService: apiService, SyncPeriod: syncPeriod}
}

func newFakeClient(t *testing.T, withAPIService bool) *aggregatorfake.Clientset {
	t.Helper()
	client := aggregatorfake.NewSimpleClientset()
	if withAPIService {
		createAPIService(t, client)
	}
	return client
}

func createAPIService(t *testing.T, client *aggregatorfake.Clientset) {
	t.Helper()
	if _, err := client.ApiregistrationV1().APIServices().Create(context.Background(),
		&apiregistrationv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: apiService, Annotations: map[string]string{"unrelated": "kept"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newAuthority(t *testing.T, opts Options, client *aggregatorfake.Clientset, clk *clocktesting.FakeClock) *Authority {
	t.Helper()
	a, err := newWithClock(opts, client.ApiregistrationV1().APIServices(), clk)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newTestAuthority(t *testing.T, withAPIService bool) (*Authority, *aggregatorfake.Clientset, *clocktesting.FakeClock) {
	t.Helper()
	client := newFakeClient(t, withAPIService)
	clk := clocktesting.NewFakeClock(start)
	return newAuthority(t, testOptions(), client, clk), client, clk
}

func getAPIService(t *testing.T, c *aggregatorfake.Clientset) *apiregistrationv1.APIService {
	t.Helper()
	s, err := c.ApiregistrationV1().APIServices().Get(context.Background(), apiService, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bundle(t *testing.T, c *aggregatorfake.Clientset) []byte {
	t.Helper()
	return getAPIService(t, c).Spec.CABundle
}

// certsIn parses every block of a PEM bundle.
func certsIn(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// fingerprintsIn lists the CAs of the APIService's caBundle and of its
// heartbeat annotations.
func fingerprintsIn(t *testing.T, c *aggregatorfake.Clientset) (inBundle, heartbeats []string) {
	t.Helper()
	s := getAPIService(t, c)
	for _, ca := range certsIn(t, s.Spec.CABundle) {
		inBundle = append(inBundle, Fingerprint(ca))
	}
	for k := range s.Annotations {
		if fp, ok := strings.CutPrefix(k, HeartbeatPrefix); ok {
			heartbeats = append(heartbeats, fp)
		}
	}
	slices.Sort(heartbeats)
	return inBundle, heartbeats
}

func servingLeaf(t *testing.T, a *Authority) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM := a.CurrentCertKeyContent()
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("serving certificate and key do not pair: %v", err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no serving certificate")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// servingVerifies checks the current serving certificate against roots, for
// the Service name kube-apiserver dials, at the given time.
func servingVerifies(t *testing.T, a *Authority, roots []byte, at time.Time) error {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	_, err := servingLeaf(t, a).Verify(x509.VerifyOptions{Roots: pool, DNSName: serviceName, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func pemOfKeyPair(k *keyPair) []byte { return pemOf(k.cert) }

func TestAuthorityReadyOnlyOncePublished(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	err := a.PublishedCheck().Check(nil)
	if err == nil {
		t.Fatal("ready before the CA was published")
	}
	if want := "serving CA not yet in APIService " + apiService + " caBundle"; err.Error() != want {
		t.Errorf("readyz error before the first sync = %q, want %q", err, want)
	}
	if n := a.PublishedCheck().Name(); n != "serving-ca-published" {
		t.Errorf("readyz check named %q", n)
	}

	a.step(context.Background())
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Fatalf("not ready after publishing: %v", err)
	}
	s := getAPIService(t, client)
	if string(s.Spec.CABundle) != string(a.CAPEM()) {
		t.Errorf("caBundle is not exactly this replica's CA:\n%s", s.Spec.CABundle)
	}
	caFP := Fingerprint(certsIn(t, a.CAPEM())[0])
	if hb := s.Annotations[HeartbeatPrefix+caFP]; hb != clk.Now().Format(time.RFC3339) {
		t.Errorf("heartbeat = %q, want the sync's time %s", hb, clk.Now().Format(time.RFC3339))
	}
	if s.Annotations["unrelated"] != "kept" {
		t.Errorf("an unrelated annotation was lost: %v", s.Annotations)
	}
	if err := servingVerifies(t, a, s.Spec.CABundle, clk.Now()); err != nil {
		t.Errorf("serving certificate does not verify against the published caBundle: %v", err)
	}

	// Once published it stays ready: the bundle it published stays even if
	// kube-apiserver cannot be reached to renew the heartbeat.
	if err := client.ApiregistrationV1().APIServices().Delete(context.Background(), apiService, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Step(syncPeriod)
	a.step(context.Background())
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Errorf("no longer ready once the APIService went away: %v", err)
	}
}

func TestAuthorityMissingAPIServiceIsNamedInReadyz(t *testing.T) {
	a, client, clk := newTestAuthority(t, false)
	a.step(context.Background())
	err := a.PublishedCheck().Check(nil)
	if err == nil || !strings.Contains(err.Error(), "APIService "+apiService+" does not exist") {
		t.Errorf("readyz error = %v, want it to name the missing APIService", err)
	}
	if !apierrors.IsNotFound(err) {
		t.Errorf("readyz error %q does not carry the NotFound", err)
	}

	// Created later: the next sync publishes.
	createAPIService(t, client)
	clk.Step(syncPeriod)
	a.step(context.Background())
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Errorf("not ready once the APIService exists: %v", err)
	}
}

func TestAuthorityReadyzCarriesTheUpdateError(t *testing.T) {
	a, client, _ := newTestAuthority(t, true)
	client.PrependReactor("update", "apiservices", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}, apiService, errors.New("RBAC says no"))
	})
	a.step(context.Background())
	err := a.PublishedCheck().Check(nil)
	if err == nil || !strings.Contains(err.Error(), apiService) || !strings.Contains(err.Error(), "RBAC says no") {
		t.Errorf("readyz error = %v, want the APIService and why the update failed", err)
	}
}

func TestAuthorityRetriesConflicts(t *testing.T) {
	a, client, _ := newTestAuthority(t, true)
	var conflicts atomic.Int32
	client.PrependReactor("update", "apiservices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts.Add(1) <= 2 {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}, apiService, errors.New("changed meanwhile"))
		}
		return false, nil, nil
	})
	a.step(context.Background())
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Fatalf("not ready after two conflicts: %v", err)
	}
	if !contains(bundle(t, client), certsIn(t, a.CAPEM())[0]) {
		t.Error("CA not in the caBundle after retrying the conflicts")
	}
}

func TestAuthorityServingCertificate(t *testing.T) {
	a, _, clk := newTestAuthority(t, true)
	leaf := servingLeaf(t, a)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CAPEM())
	opts := testOptions()
	for _, name := range append(slices.Clone(opts.DNSNames), "127.0.0.1") {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: clk.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate does not verify for %s against CAPEM: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example", CurrentTime: clk.Now()}); err == nil {
		t.Error("serving certificate verifies for a name it was not made for")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: serviceName, CurrentTime: clk.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("serving certificate is good for client authentication too")
	}
	if leaf.Subject.CommonName != opts.Host || leaf.IsCA {
		t.Errorf("serving certificate CN %q, isCA %v", leaf.Subject.CommonName, leaf.IsCA)
	}
	if want := clk.Now().Add(certValidity); !leaf.NotAfter.Equal(want) {
		t.Errorf("serving certificate NotAfter %s, want %s", leaf.NotAfter, want)
	}
	if want := clk.Now().Add(-backdate); !leaf.NotBefore.Equal(want) {
		t.Errorf("serving certificate NotBefore %s, want backdated to %s", leaf.NotBefore, want)
	}

	ca := certsIn(t, a.CAPEM())[0]
	if !ca.IsCA || !ca.MaxPathLenZero || ca.MaxPathLen != 0 || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: isCA %v, maxPathLen %d (zero %v), key usage %b", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if want := clk.Now().Add(caValidity); !ca.NotAfter.Equal(want) {
		t.Errorf("CA NotAfter %s, want %s", ca.NotAfter, want)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
}

func TestAuthorityServingCertificateNeverOutlivesItsCA(t *testing.T) {
	opts := testOptions()
	opts.CertValidity = opts.CAValidity // allowed: equal
	client := newFakeClient(t, true)
	clk := clocktesting.NewFakeClock(start)
	a := newAuthority(t, opts, client, clk)
	a.step(context.Background())
	clk.Step(caValidity * 2 / 3) // the CA's renewal, and the certificate's
	a.step(context.Background())
	if leaf, ca := servingLeaf(t, a), a.ca.cert; leaf.NotAfter.After(ca.NotAfter) {
		t.Errorf("serving certificate valid until %s, after its CA's %s", leaf.NotAfter, ca.NotAfter)
	}
}

func TestAuthorityRenewsServingCertificateAtTwoThirds(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	l := &countingListener{}
	a.AddListener(l)
	ctx := context.Background()
	a.step(ctx)
	before, _ := a.CurrentCertKeyContent()
	caBefore := a.CAPEM()

	clk.Step(certValidity*2/3 - time.Second)
	a.step(ctx)
	if now, _ := a.CurrentCertKeyContent(); string(now) != string(before) || l.n.Load() != 0 {
		t.Fatalf("serving certificate renewed before two thirds of its life (listeners told %d times)", l.n.Load())
	}

	clk.Step(time.Second)
	a.step(ctx)
	after, _ := a.CurrentCertKeyContent()
	if string(before) == string(after) {
		t.Fatal("serving certificate not renewed at two thirds of its life")
	}
	if n := l.n.Load(); n != 1 {
		t.Errorf("listeners told %d times of one renewal, want 1", n)
	}
	if string(a.CAPEM()) != string(caBefore) {
		t.Error("the CA changed with the serving certificate")
	}
	if want := clk.Now().Add(certValidity); !servingLeaf(t, a).NotAfter.Equal(want) {
		t.Errorf("renewed certificate NotAfter %s, want %s", servingLeaf(t, a).NotAfter, want)
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("renewed certificate does not verify against the caBundle: %v", err)
	}
}

func TestAuthorityRotatesCAOnlyAfterPublishing(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	l := &countingListener{}
	a.AddListener(l)
	ctx := context.Background()
	a.step(ctx)
	oldCA := a.CAPEM()
	oldFP := Fingerprint(a.ca.cert)

	clk.Step(caValidity * 2 / 3) // the CA's renewal
	wait := a.step(ctx)
	if a.next == nil {
		t.Fatal("no next CA at two thirds of the CA's life")
	}
	nextFP := Fingerprint(a.next.cert)
	nextCA := pemOfKeyPair(a.next)
	// The next CA is in the bundle beside the old one, both heartbeating; the
	// old one still signs.
	inBundle, heartbeats := fingerprintsIn(t, client)
	if !slices.Equal(inBundle, []string{oldFP, nextFP}) {
		t.Fatalf("bundle during the rotation holds %v, want the old CA %s then the next %s", inBundle, oldFP, nextFP)
	}
	if want := slices.Sorted(slices.Values([]string{oldFP, nextFP})); !slices.Equal(heartbeats, want) {
		t.Errorf("heartbeats during the rotation %v, want %v", heartbeats, want)
	}
	if string(a.CAPEM()) != string(oldCA) {
		t.Fatal("switched to the next CA before kube-apiserver could have seen it")
	}
	if wait > a.propagation() {
		t.Errorf("next step in %s, after the propagation delay %s", wait, a.propagation())
	}

	clk.Step(a.propagation() - time.Second)
	a.step(ctx)
	if string(a.CAPEM()) != string(oldCA) {
		t.Fatal("switched to the next CA before the propagation delay")
	}
	told := l.n.Load()

	clk.Step(time.Second)
	a.step(ctx)
	if string(a.CAPEM()) != string(nextCA) {
		t.Fatal("not signing with the next CA after the propagation delay")
	}
	if l.n.Load() == told {
		t.Error("listeners not told of the certificate from the next CA")
	}
	if err := servingVerifies(t, a, nextCA, clk.Now()); err != nil {
		t.Errorf("serving certificate is not from the next CA: %v", err)
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("certificate from the next CA does not verify against the bundle: %v", err)
	}
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Errorf("not ready after the rotation: %v", err)
	}

	// The old CA no longer heartbeats: it stays while kube-apiserver may
	// still hold connections made with it, and is dropped as stale after
	// StaleAfterPeriods sync periods.
	lastOldHeartbeat := clk.Now()
	for clk.Now().Sub(lastOldHeartbeat) < StaleAfterPeriods*syncPeriod {
		clk.Step(syncPeriod)
		a.step(ctx)
		if inBundle, _ := fingerprintsIn(t, client); !slices.Contains(inBundle, oldFP) {
			t.Fatalf("old CA dropped %s after its last heartbeat, before the %s staleness window", clk.Now().Sub(lastOldHeartbeat), StaleAfterPeriods*syncPeriod)
		}
	}
	clk.Step(syncPeriod)
	a.step(ctx)
	inBundle, heartbeats = fingerprintsIn(t, client)
	if !slices.Equal(inBundle, []string{nextFP}) || !slices.Equal(heartbeats, []string{nextFP}) {
		t.Errorf("after the staleness window bundle %v, heartbeats %v; want only the new CA %s", inBundle, heartbeats, nextFP)
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("serving certificate does not verify against the bundle without the old CA: %v", err)
	}
}

func TestAuthorityKeepsSigningWithOldCAUntilNextIsPublished(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	ctx := context.Background()
	a.step(ctx)
	oldCA := a.CAPEM()
	var failing atomic.Bool
	client.PrependReactor("update", "apiservices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, apierrors.NewServiceUnavailable("kube-apiserver is down")
		}
		return false, nil, nil
	})
	failing.Store(true)

	clk.Step(caValidity * 2 / 3)
	a.step(ctx)
	for range 3 {
		clk.Step(a.propagation())
		a.step(ctx)
	}
	if string(a.CAPEM()) != string(oldCA) {
		t.Fatal("switched to a next CA that kube-apiserver was never shown")
	}
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Errorf("the old CA is still published, but readyz fails: %v", err)
	}

	// The update works again: the next CA is published, and used after the
	// propagation delay.
	failing.Store(false)
	clk.Step(syncPeriod)
	a.step(ctx)
	if string(a.CAPEM()) != string(oldCA) {
		t.Fatal("switched in the same sync that published the next CA")
	}
	clk.Step(a.propagation())
	a.step(ctx)
	if string(a.CAPEM()) == string(oldCA) {
		t.Fatal("still signing with the old CA after the next one was published")
	}
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("serving certificate does not verify against the bundle: %v", err)
	}
}

func TestAuthorityOldCAExpiredSwitchesEvenIfUnpublished(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	ctx := context.Background()
	a.step(ctx)
	oldCA := a.CAPEM()
	client.PrependReactor("update", "apiservices", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("kube-apiserver is down")
	})
	clk.Step(caValidity * 2 / 3)
	a.step(ctx)
	clk.Step(caValidity/3 + time.Second) // the old CA has expired
	a.step(ctx)
	if string(a.CAPEM()) == string(oldCA) {
		t.Fatal("still serving from an expired CA")
	}
	if err := servingVerifies(t, a, a.CAPEM(), clk.Now()); err != nil {
		t.Errorf("serving certificate not from the new CA: %v", err)
	}
	// kube-apiserver has not been told: not ready, and readyz says why.
	if err := a.PublishedCheck().Check(nil); err == nil || !strings.Contains(err.Error(), "kube-apiserver is down") {
		t.Errorf("readyz with an unpublished CA = %v, want the update error", err)
	}
}

// TestAuthorityReplicasKeepEachOthersCA runs two replicas against one
// APIService: each keeps the other's CA while it heartbeats, and drops it
// once it has been silent for the staleness window.
func TestAuthorityReplicasKeepEachOthersCA(t *testing.T) {
	client := newFakeClient(t, true)
	clk := clocktesting.NewFakeClock(start)
	ctx := context.Background()
	a := newAuthority(t, testOptions(), client, clk)
	b := newAuthority(t, testOptions(), client, clk)
	aFP, bFP := Fingerprint(a.ca.cert), Fingerprint(b.ca.cert)

	a.step(ctx)
	b.step(ctx)
	clk.Step(syncPeriod)
	a.step(ctx)
	inBundle, heartbeats := fingerprintsIn(t, client)
	if !slices.Equal(inBundle, []string{aFP, bFP}) {
		t.Fatalf("bundle holds %v, want A's %s and B's %s", inBundle, aFP, bFP)
	}
	if want := slices.Sorted(slices.Values([]string{aFP, bFP})); !slices.Equal(heartbeats, want) {
		t.Errorf("heartbeats %v, want %v", heartbeats, want)
	}
	for name, r := range map[string]*Authority{"A": a, "B": b} {
		if err := servingVerifies(t, r, bundle(t, client), clk.Now()); err != nil {
			t.Errorf("%s's serving certificate does not verify against the shared bundle: %v", name, err)
		}
		if err := r.PublishedCheck().Check(nil); err != nil {
			t.Errorf("%s not ready: %v", name, err)
		}
	}

	// B stops: A keeps B's CA for the staleness window after B's last
	// heartbeat, then drops it and its heartbeat.
	bLast := clk.Now().Add(-syncPeriod)
	for {
		clk.Step(syncPeriod)
		a.step(ctx)
		inBundle, heartbeats = fingerprintsIn(t, client)
		if !slices.Contains(inBundle, bFP) {
			break
		}
		if clk.Now().Sub(bLast) > StaleAfterPeriods*syncPeriod {
			t.Fatalf("B's CA still in the bundle %s after its last heartbeat", clk.Now().Sub(bLast))
		}
	}
	if silent := clk.Now().Sub(bLast); silent <= StaleAfterPeriods*syncPeriod {
		t.Errorf("B's CA dropped after %s of silence, within the staleness window %s", silent, StaleAfterPeriods*syncPeriod)
	}
	if !slices.Equal(inBundle, []string{aFP}) || !slices.Equal(heartbeats, []string{aFP}) {
		t.Errorf("after B went: bundle %v, heartbeats %v; want only A's %s", inBundle, heartbeats, aFP)
	}
}

// TestAuthorityShortestSyncPeriodKeepsLivePeers: heartbeats are written to
// the second, so a live replica's can look up to a second older than it is.
// With the shortest sync period allowed, one second, and each heartbeat
// written just before a second ends, the peer still never drops it.
func TestAuthorityShortestSyncPeriodKeepsLivePeers(t *testing.T) {
	opts := testOptions()
	opts.SyncPeriod = time.Second
	client := newFakeClient(t, true)
	clk := clocktesting.NewFakeClock(start.Add(999 * time.Millisecond))
	ctx := context.Background()
	a := newAuthority(t, opts, client, clk)
	b := newAuthority(t, opts, client, clk)
	for range 3 * StaleAfterPeriods {
		a.step(ctx)
		clk.Step(opts.SyncPeriod - time.Millisecond) // B syncs just before A's next heartbeat
		b.step(ctx)
		if !contains(bundle(t, client), a.ca.cert) {
			t.Fatalf("B dropped A's CA %s after A's last heartbeat, within the %s staleness window", opts.SyncPeriod, StaleAfterPeriods*opts.SyncPeriod)
		}
		clk.Step(time.Millisecond)
	}
}

func TestAuthorityWithoutAPIService(t *testing.T) {
	opts := testOptions()
	opts.APIService, opts.SyncPeriod = "", 0
	clk := clocktesting.NewFakeClock(start)
	a, err := newWithClock(opts, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PublishedCheck().Check(nil); err != nil {
		t.Errorf("not ready without an APIService to publish to: %v", err)
	}
	oldCA := a.CAPEM()
	a.step(context.Background())
	clk.Step(caValidity * 2 / 3)
	a.step(context.Background())
	if string(a.CAPEM()) == string(oldCA) {
		t.Error("without an APIService the next CA is not used at once")
	}
	if err := servingVerifies(t, a, a.CAPEM(), clk.Now()); err != nil {
		t.Errorf("serving certificate not from the new CA: %v", err)
	}
}

func TestAuthorityRunUntilCancelled(t *testing.T) {
	a, client, clk := newTestAuthority(t, true)
	l := &countingListener{}
	a.AddListener(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("the first step", func() bool { return a.PublishedCheck().Check(nil) == nil && clk.HasWaiters() })
	// Step the clock past the serving certificate's renewal, one sync period
	// at a time, reading the certificate as a TLS handshake would meanwhile.
	for clk.Now().Sub(start) <= certValidity*2/3 {
		clk.Step(syncPeriod)
		a.CurrentCertKeyContent()
		waitFor("the next step", clk.HasWaiters)
	}
	waitFor("the renewal", func() bool { return l.n.Load() > 0 })
	if err := servingVerifies(t, a, bundle(t, client), clk.Now()); err != nil {
		t.Errorf("renewed certificate does not verify: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	client := aggregatorfake.NewSimpleClientset().ApiregistrationV1().APIServices()
	for _, tc := range []struct {
		name string
		opts Options
		nil  bool // no client
		want string
	}{
		{name: "zero CA validity", opts: Options{CAValidity: 0, CertValidity: time.Hour}, want: "must be positive"},
		{name: "negative certificate validity", opts: Options{CAValidity: time.Hour, CertValidity: -time.Hour}, want: "must be positive"},
		{name: "certificate outlives CA", opts: Options{CAValidity: time.Hour, CertValidity: 2 * time.Hour}, want: "serving certificate validity 2h0m0s is longer than the CA's 1h0m0s"},
		{name: "APIService without a client", nil: true, opts: Options{CAValidity: time.Hour, CertValidity: time.Hour, APIService: apiService, SyncPeriod: time.Minute}, want: "needs a client"},
		{name: "APIService without a sync period", opts: Options{CAValidity: time.Hour, CertValidity: time.Hour, APIService: apiService}, want: "positive sync period"},
		// Heartbeats are written to the second: with 100ms a peer's heartbeat
		// 200ms old could read as more than the 500ms staleness window.
		{name: "sub-second sync period", opts: Options{CAValidity: time.Hour, CertValidity: time.Hour, APIService: apiService, SyncPeriod: 100 * time.Millisecond},
			want: "sync period 100ms is under a second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client
			if tc.nil {
				c = nil
			}
			_, err := New(tc.opts, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%+v) = %v, want an error with %q", tc.opts, err, tc.want)
			}
		})
	}
	if _, err := New(Options{Host: serviceName, CAValidity: time.Hour, CertValidity: time.Hour}, nil); err != nil {
		t.Errorf("New without an APIService and without a client: %v", err)
	}
}
