package podcertificates

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/controller/workers"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/backends"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

type fakeStates struct {
	mu     sync.Mutex
	states map[issuers.Ref]*issuers.State
}

func (f *fakeStates) Get(ref issuers.Ref) (*issuers.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.states[ref]
	return s, ok
}
func (f *fakeStates) OnChange(func(issuers.Ref)) {}
func (f *fakeStates) HasSynced() bool            { return true }

// trustBundleLog records KeepUntil calls in the order of every write.
type trustBundleLog struct {
	mu    sync.Mutex
	order *[]string
	kept  []time.Time
	err   error
}

func (l *trustBundleLog) KeepUntil(_ context.Context, _ issuers.Ref, _ *signers.CA, notAfter time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	*l.order = append(*l.order, "keep")
	l.kept = append(l.kept, notAfter)
	return nil
}

var (
	teamCA     = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "ca"}
	teamSelf   = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "self"}
	clusterCA  = issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "root"}
	teamAbsent = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "absent"}
)

type pcrHarness struct {
	t        *testing.T
	ctx      context.Context
	client   *fake.Clientset
	c        *Controller
	recorder *record.FakeRecorder
	bundles  *trustBundleLog
	order    []string
	root     *testpki.CA
	// notLeading makes the controller believe it lost the lease.
	notLeading bool
}

// newPCRHarness: a ready CA Issuer team/ca and ClusterIssuer root, a
// SelfSigned Issuer team/self; ServiceAccount team/web may reference
// anything, every other ServiceAccount nothing.
func newPCRHarness(t *testing.T, pcrs ...*certificatesv1.PodCertificateRequest) *pcrHarness {
	t.Helper()
	h := &pcrHarness{t: t, root: testpki.MustCA(testpki.CAOptions{CommonName: "team root"})}
	ca, err := signers.ParseCA("team/ca", map[string][]byte{"tls.crt": h.root.CertPEM(), "tls.key": h.root.KeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	caState := func(ref issuers.Ref) *issuers.State {
		return &issuers.State{Issuer: &issuers.Issuer{Ref: ref, Type: issuers.TypeCA, CA: &issuers.CAConfig{SecretName: "ca"}}, Ready: true, CA: ca}
	}
	states := &fakeStates{states: map[issuers.Ref]*issuers.State{
		teamCA:    caState(teamCA),
		clusterCA: caState(clusterCA),
		teamSelf:  {Issuer: &issuers.Issuer{Ref: teamSelf, Type: issuers.TypeSelfSigned}, Ready: true},
	}}
	objs := make([]runtime.Object, len(pcrs))
	for i, p := range pcrs {
		objs[i] = p
	}
	h.client = fake.NewClientset(objs...)
	h.client.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		sar.Status.Allowed = sar.Spec.User == "system:serviceaccount:team:web"
		return true, sar, nil
	})
	h.client.PrependReactor("update", "podcertificaterequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" {
			h.order = append(h.order, "status")
		}
		return false, nil, nil
	})
	h.bundles = &trustBundleLog{order: &h.order}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.ctx = ctx
	factory := informers.NewSharedInformerFactory(h.client, 0)
	pipeline := issuance.New(states, backends.New(issuance.Deps{}), issuance.Policy{}, issuance.NewReferenceChecker(h.client), nil)
	pipeline.SetRecorder(h.bundles)
	h.c, err = New(h.client, factory.Certificates().V1().PodCertificateRequests(), states, pipeline, Options{Leading: func() bool { return !h.notLeading }})
	if err != nil {
		t.Fatal(err)
	}
	h.recorder = record.NewFakeRecorder(100)
	h.c.recorder = h.recorder
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), h.c.synced) {
		t.Fatal("informer did not sync")
	}
	return h
}

// pcr is what kubelet creates for pod web-0 (ServiceAccount sa) in namespace ns.
func pcr(t *testing.T, ns, name, sa string, ref issuers.Ref) *certificatesv1.PodCertificateRequest {
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name), CreationTimestamp: metav1.Now()},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName:           ref.SignerName(),
			PodName:              "web-0",
			PodUID:               "pod-uid",
			ServiceAccountName:   sa,
			ServiceAccountUID:    "sa-uid",
			NodeName:             "node-1",
			NodeUID:              "node-uid",
			MaxExpirationSeconds: ptr.To[int32](3600),
			StubPKCS10Request:    stub(t, key),
		},
	}
}

func (h *pcrHarness) sync(ns, name string) error {
	h.t.Helper()
	return h.c.sync(h.ctx, ns+"/"+name)
}

func (h *pcrHarness) get(ns, name string) *certificatesv1.PodCertificateRequest {
	h.t.Helper()
	p, err := h.client.CertificatesV1().PodCertificateRequests(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *pcrHarness) statusWrites() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func (h *pcrHarness) events() string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}

func TestIssuesAPodCertificate(t *testing.T) {
	req := pcr(t, "team", "req-1", "web", teamCA)
	h := newPCRHarness(t, req)
	start := time.Now()
	if err := h.sync("team", "req-1"); err != nil {
		t.Fatal(err)
	}
	got := h.get("team", "req-1")
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != "Issued" || got.Status.Conditions[0].Status != metav1.ConditionTrue ||
		got.Status.Conditions[0].Reason != "Issued" {
		t.Fatalf("conditions = %+v", got.Status.Conditions)
	}
	certs, err := signers.ParseCertificates([]byte(got.Status.CertificateChain))
	if err != nil {
		t.Fatal(err)
	}
	leaf := certs[0]
	if !got.Status.NotBefore.Time.Equal(leaf.NotBefore) || !got.Status.NotAfter.Time.Equal(leaf.NotAfter) {
		t.Errorf("status [%s, %s], leaf [%s, %s]", got.Status.NotBefore, got.Status.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != time.Hour {
		t.Errorf("lifetime %s, want maxExpirationSeconds, 1h", life)
	}
	if d := start.Sub(leaf.NotBefore); d < 0 || d > Backdate+time.Second {
		t.Errorf("NotBefore %s is not about %s before %s", leaf.NotBefore, Backdate, start)
	}
	if !got.Status.BeginRefreshAt.Time.Equal(leaf.NotBefore.Add(40 * time.Minute)) {
		t.Errorf("beginRefreshAt = %s, want two thirds into the hour", got.Status.BeginRefreshAt)
	}
	if leaf.URIs[0].String() != "spiffe://cluster.local/ns/team/sa/web" {
		t.Errorf("SPIFFE ID = %s", leaf.URIs[0])
	}
	pool := x509.NewCertPool()
	pool.AddCert(h.root.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Error(err)
	}
	// Recorded in the trust bundle, with the leaf's NotAfter, before the write.
	if strings.Join(h.order, ",") != "keep,status" || !h.bundles.kept[0].Equal(leaf.NotAfter) {
		t.Errorf("order %v kept %v, want KeepUntil(%s) then the status write", h.order, h.bundles.kept, leaf.NotAfter)
	}

	// The informer may still show the request pending: it is not signed again.
	if err := h.sync("team", "req-1"); err != nil {
		t.Fatal(err)
	}
	if n := h.statusWrites(); n != 1 {
		t.Errorf("%d status writes, want 1", n)
	}
}

func TestRequestsEndedWithAReason(t *testing.T) {
	withAnnotation := pcr(t, "team", "annotated", "web", teamCA)
	withAnnotation.Spec.UnverifiedUserAnnotations = map[string]string{"example.com/dns": "web.team.svc"}
	rsa2048, err := testpki.NewKey(testpki.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	weakKey := pcr(t, "team", "rsa2048", "web", teamCA)
	weakKey.Spec.StubPKCS10Request = stub(t, rsa2048)
	for _, tc := range []struct {
		req       *certificatesv1.PodCertificateRequest
		condition string
		reason    string
		message   string
	}{
		{pcr(t, "other", "foreign", "web", teamCA), "Denied", "DeniedNamespace", "pod in namespace other may not use Issuer team/ca"},
		{pcr(t, "team", "no-reference", "db", teamCA), "Denied", "DeniedReference", `ServiceAccount team/db may not reference Namespaced Issuer team/ca: grant it the "reference" verb on signers.cert-manager.io/ca in namespace team`},
		{pcr(t, "team", "no-cluster-reference", "db", clusterCA), "Denied", "DeniedReference", `ServiceAccount team/db may not reference ClusterIssuer root: grant it the "reference" verb on clustersigners.cert-manager.io/root`},
		{withAnnotation, "Denied", "InvalidUnverifiedUserAnnotations", `unknown unverifiedUserAnnotations key(s) "example.com/dns"`},
		{weakKey, "Denied", "UnsupportedKeyType", "use keyType ECDSAP256"},
		{pcr(t, "team", "selfsigned", "web", teamSelf), "Failed", "IssuerTypeNotSupported", "signet signs PodCertificateRequests with CA issuers only; Issuer team/self is a SelfSigned issuer"},
	} {
		t.Run(tc.reason+"/"+tc.req.Name, func(t *testing.T) {
			h := newPCRHarness(t, tc.req)
			if err := h.sync(tc.req.Namespace, tc.req.Name); err != nil {
				t.Fatal(err)
			}
			got := h.get(tc.req.Namespace, tc.req.Name)
			if len(got.Status.Conditions) != 1 {
				t.Fatalf("conditions = %+v", got.Status.Conditions)
			}
			c := got.Status.Conditions[0]
			if c.Type != tc.condition || c.Reason != tc.reason || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, tc.message) {
				t.Errorf("condition %s/%s %q, want %s/%s containing %q", c.Type, c.Reason, c.Message, tc.condition, tc.reason, tc.message)
			}
			if got.Status.CertificateChain != "" || got.Status.NotAfter != nil {
				t.Error("a refused request got a certificate")
			}
			if len(h.order) != 1 || h.order[0] != "status" {
				t.Errorf("writes %v, want one status write and no trust bundle record", h.order)
			}
			if ev := h.events(); !strings.Contains(ev, "Warning "+tc.reason) {
				t.Errorf("events %q, want a Warning %s", ev, tc.reason)
			}
		})
	}
}

func TestWaits(t *testing.T) {
	t.Run("issuer not found", func(t *testing.T) {
		h := newPCRHarness(t, pcr(t, "team", "req", "web", teamAbsent))
		if err := h.sync("team", "req"); err != nil {
			t.Fatal(err)
		}
		if n := h.statusWrites(); n != 0 {
			t.Errorf("%d status writes for a request that waits", n)
		}
		if ev := h.events(); !strings.Contains(ev, "Warning IssuerNotFound Referenced Issuer team/absent not found") {
			t.Errorf("events %q", ev)
		}
	})
	t.Run("trust bundle not recorded: nothing signed", func(t *testing.T) {
		h := newPCRHarness(t, pcr(t, "team", "req", "web", teamCA))
		h.bundles.err = errors.New("forbidden")
		if err := h.sync("team", "req"); err == nil {
			t.Fatal("want an error, to retry with backoff")
		}
		if n := h.statusWrites(); n != 0 {
			t.Errorf("%d status writes, want none: a certificate must not be issued before it is recorded", n)
		}
		if ev := h.events(); !strings.Contains(ev, "Warning TrustBundleNotRecorded") {
			t.Errorf("events %q", ev)
		}
	})
}

// A replica that may have lost its lease neither signs nor writes.
func TestNotLeadingWritesNothing(t *testing.T) {
	h := newPCRHarness(t, pcr(t, "team", "req", "web", teamCA), pcr(t, "other", "foreign", "web", teamCA))
	h.notLeading = true
	for _, key := range []string{"team/req", "other/foreign"} {
		if err := h.c.sync(h.ctx, key); !errors.Is(err, workers.ErrNotLeading) {
			t.Errorf("sync %s = %v, want ErrNotLeading", key, err)
		}
	}
	if len(h.order) != 0 {
		t.Errorf("writes %v while not leading", h.order)
	}
}

// A request kubelet made for a pod is taken up from the informer by Run's
// workers.
func TestRunIssuesFromTheQueue(t *testing.T) {
	h := newPCRHarness(t)
	go h.c.Run(h.ctx)
	req := pcr(t, "team", "queued", "web", clusterCA)
	if _, err := h.client.CertificatesV1().PodCertificateRequests("team").Create(h.ctx, req, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return finished(h.get("team", "queued")), nil
	})
	if err != nil {
		t.Fatal("not issued")
	}
	if got := h.get("team", "queued"); got.Status.Conditions[0].Type != "Issued" {
		t.Errorf("conditions %+v", got.Status.Conditions)
	}
}
