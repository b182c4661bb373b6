package trustbundles

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

// fakeStates is a read model the test sets by hand.
type fakeStates struct {
	mu        sync.Mutex
	states    map[issuers.Ref]*issuers.State
	listeners []func(issuers.Ref)
}

func newFakeStates() *fakeStates { return &fakeStates{states: map[issuers.Ref]*issuers.State{}} }

func (f *fakeStates) Get(ref issuers.Ref) (*issuers.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.states[ref]
	return s, ok
}

func (f *fakeStates) List(kind issuers.Kind, namespace string) ([]*issuers.State, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*issuers.State
	for ref, s := range f.states {
		if ref.Kind == kind && (namespace == "" || namespace == ref.Namespace) {
			out = append(out, s)
		}
	}
	return out, 1
}

func (f *fakeStates) OnChange(fn func(issuers.Ref)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(f.listeners, fn)
}

func (f *fakeStates) HasSynced() bool { return true }

// set makes ref a ready CA issuer signing with ca, or deletes it (ca nil).
func (f *fakeStates) set(ref issuers.Ref, ca *signers.CA) {
	f.mu.Lock()
	if ca == nil {
		delete(f.states, ref)
	} else {
		f.states[ref] = &issuers.State{Issuer: &issuers.Issuer{Ref: ref, Type: issuers.TypeCA}, Ready: true, Reason: issuers.ReasonReady, CA: ca}
	}
	listeners := f.listeners
	f.mu.Unlock()
	for _, fn := range listeners {
		fn(ref)
	}
}

func parsedCA(t *testing.T, cn string) (*testpki.CA, *signers.CA) {
	t.Helper()
	raw := testpki.MustCA(testpki.CAOptions{CommonName: cn})
	ca, err := signers.ParseCA("team/"+cn, map[string][]byte{"tls.crt": raw.CertPEM(), "tls.key": raw.KeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	return raw, ca
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	states *fakeStates
	clock  *testingclock.FakeClock
	c      *Controller
}

// start builds a controller on client (a new process, as after a restart)
// and waits for its informer.
func start(t *testing.T, client *fake.Clientset, states *fakeStates, clock *testingclock.FakeClock) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory.Certificates().V1().ClusterTrustBundles(), states, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		t.Fatal("informer did not sync")
	}
	return &harness{t: t, ctx: ctx, client: client, states: states, clock: clock, c: c}
}

// bundle reads the signer's bundle from the API, and waits until the
// informer has the same content, so that the next step reads what was written.
func (h *harness) bundle(signer string) *certificatesv1.ClusterTrustBundle {
	h.t.Helper()
	b, err := h.client.CertificatesV1().ClusterTrustBundles().Get(h.ctx, Name(signer), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		b = nil
	} else if err != nil {
		h.t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(h.ctx, 5*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		cached, err := h.c.lister.Get(Name(signer))
		if b == nil {
			return apierrors.IsNotFound(err), nil
		}
		return err == nil && cached.Spec.TrustBundle == b.Spec.TrustBundle && maps.Equal(cached.Annotations, b.Annotations), nil
	})
	if err != nil {
		h.t.Fatalf("informer never caught up with %s", Name(signer))
	}
	return b
}

func (h *harness) reconcile(signer string) {
	h.t.Helper()
	if err := h.c.reconcile(h.ctx, signer); err != nil {
		h.t.Fatal(err)
	}
}

func writes(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "clustertrustbundles" && (a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "delete") {
			n++
		}
	}
	return n
}

func anchorNames(b *certificatesv1.ClusterTrustBundle) []string {
	var out []string
	for _, c := range ParseBundle(b.Spec.TrustBundle) {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// The life of one signer's bundle: published, a certificate recorded before
// it is signed (one write for a burst), the CA rotated with the old one
// kept, a restart that remembers, the old CA dropped once its last
// certificate expired, and the bundle gone with the issuer.
func TestBundleLifecycle(t *testing.T) {
	ref := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "ca"}
	signer := ref.SignerName()
	clock := testingclock.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	client := fake.NewClientset()
	states := newFakeStates()
	_, ca1 := parsedCA(t, "ca-1")
	states.set(ref, ca1)
	h := start(t, client, states, clock)

	h.reconcile(signer)
	b := h.bundle(signer)
	if b == nil {
		t.Fatal("no bundle for a ready CA issuer")
	}
	if b.Spec.SignerName != signer || b.Labels[LabelManagedBy] != ManagedBy || b.Name != "issuers.cert-manager.io:team.ca:ca" {
		t.Errorf("bundle %s: signerName %q labels %v", b.Name, b.Spec.SignerName, b.Labels)
	}
	if got := anchorNames(b); len(got) != 1 || got[0] != "ca-1" {
		t.Fatalf("anchors = %v, want ca-1", got)
	}

	// A burst: the first certificate writes IssuedUntil KeepAhead past its
	// NotAfter, the rest are covered by it.
	before := writes(client)
	notAfter := clock.Now().Add(24 * time.Hour)
	for i := range 100 {
		if err := h.c.KeepUntil(h.ctx, ref, ca1, notAfter.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes(client) - before; n != 1 {
		t.Errorf("100 KeepUntil calls within KeepAhead wrote %d times, want 1", n)
	}
	b = h.bundle(signer)
	want := notAfter.Add(DefaultKeepAhead)
	if got := ParseIssuedUntil(b.Annotations)[Fingerprint(ca1.Certificate)]; !got.Equal(want) {
		t.Errorf("IssuedUntil = %s, want %s", got, want)
	}

	// Rotation: both CAs, the old one with its IssuedUntil.
	_, ca2 := parsedCA(t, "ca-2")
	states.set(ref, ca2)
	h.reconcile(signer)
	b = h.bundle(signer)
	if got := anchorNames(b); len(got) != 2 || got[0] != "ca-2" || got[1] != "ca-1" {
		t.Fatalf("after rotation anchors = %v, want [ca-2 ca-1]", got)
	}

	// A new process, a little later: the bundle is its memory.
	clock.Step(time.Hour)
	h = start(t, client, states, clock)
	h.reconcile(signer)
	if got := anchorNames(h.bundle(signer)); len(got) != 2 {
		t.Fatalf("after restart anchors = %v, want both CAs", got)
	}
	// It knows the old CA is recorded without writing again.
	before = writes(client)
	if err := h.c.KeepUntil(h.ctx, ref, ca1, notAfter); err != nil {
		t.Fatal(err)
	}
	if writes(client) != before {
		t.Error("KeepUntil after a restart wrote what the bundle already records")
	}

	// The last certificate from ca-1 has expired (and KeepAhead with it).
	clock.SetTime(want.Add(time.Second))
	h.reconcile(signer)
	if got := anchorNames(h.bundle(signer)); len(got) != 1 || got[0] != "ca-2" {
		t.Fatalf("after ca-1's certificates expired anchors = %v, want [ca-2]", got)
	}

	// The issuer is deleted: its bundle goes.
	states.set(ref, nil)
	h.reconcile(signer)
	if b := h.bundle(signer); b != nil {
		t.Fatalf("bundle of a deleted issuer still exists: %v", anchorNames(b))
	}
}

// A certificate is recorded for a CA the issuer has already left: its anchor
// goes into the bundle beside the current one.
func TestKeepUntilForACAJustReplaced(t *testing.T) {
	ref := issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "root"}
	signer := ref.SignerName()
	clock := testingclock.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	client := fake.NewClientset()
	states := newFakeStates()
	_, ca1 := parsedCA(t, "ca-1")
	_, ca2 := parsedCA(t, "ca-2")
	states.set(ref, ca2)
	h := start(t, client, states, clock)
	if err := h.c.KeepUntil(h.ctx, ref, ca1, clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b := h.bundle(signer)
	if b == nil || b.Name != "clusterissuers.cert-manager.io:root:ca" {
		t.Fatalf("bundle = %v", b)
	}
	if got := anchorNames(b); len(got) != 2 || got[0] != "ca-2" || got[1] != "ca-1" {
		t.Fatalf("anchors = %v, want [ca-2 ca-1]", got)
	}
}

// signet never takes over a bundle it did not create.
func TestForeignBundleLeftAlone(t *testing.T) {
	ref := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "ca"}
	signer := ref.SignerName()
	raw, ca1 := parsedCA(t, "ca-1")
	foreign := &certificatesv1.ClusterTrustBundle{
		ObjectMeta: metav1.ObjectMeta{Name: Name(signer)},
		Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: string(raw.CertPEM())},
	}
	client := fake.NewClientset(foreign)
	states := newFakeStates()
	states.set(ref, ca1)
	clock := testingclock.NewFakeClock(time.Now())
	h := start(t, client, states, clock)
	err := h.c.KeepUntil(h.ctx, ref, ca1, clock.Now().Add(time.Hour))
	if err == nil {
		t.Fatal("KeepUntil wrote into a bundle signet does not own")
	}
	if n := writes(client); n != 0 {
		t.Errorf("signet wrote %d times with a foreign bundle under its name", n)
	}
	if !strings.Contains(err.Error(), "not signet's") {
		t.Errorf("error %q does not say why", err)
	}
	// Nor does the issuer's deletion remove it.
	states.set(ref, nil)
	h.reconcile(signer)
	if n := writes(client); n != 0 {
		t.Errorf("signet wrote %d times after the issuer was deleted", n)
	}
}
