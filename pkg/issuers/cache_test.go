package issuers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
)

// The Cache against fake clients: the fake clientset is both the Secret
// watch (the Cache's fallback without a metadata client) and the Secret
// reads, so one object store drives both, and its recorded actions show
// every request the Cache made.

func issuerFixture(ns, name string, spec map[string]interface{}) *unstructured.Unstructured {
	kind := "Issuer"
	if ns == "" {
		kind = "ClusterIssuer"
	}
	md := map[string]interface{}{"name": name, "uid": "uid-" + ns + "-" + name}
	if ns != "" {
		md["namespace"] = ns
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "cert-manager.io/v1", "kind": kind, "metadata": md, "spec": spec,
	}}
}

func caIssuerObject(ns, name, secret string) *unstructured.Unstructured {
	return issuerFixture(ns, name, map[string]interface{}{"ca": map[string]interface{}{"secretName": secret}})
}

func caSecret(ns, name, rv string, ca *testpki.CA) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{signers.TLSCertKey: ca.CertPEM(), signers.TLSKeyKey: ca.KeyPEM(), "unrelated": []byte("dropped")},
	}
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	dyn   *dynamicfake.FakeDynamicClient
	kube  *kubefake.Clientset
	clock *clocktesting.FakeClock
	cache *Cache

	mu      sync.Mutex
	changed []Ref
}

var fixtureNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, issuers []runtime.Object, secrets ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(fixtureNow)}
	f.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		IssuerGVR: "IssuerList", ClusterIssuerGVR: "ClusterIssuerList"}, issuers...)
	f.kube = kubefake.NewClientset(secrets...)
	f.cache = New(f.dyn, f.kube, Options{Clock: f.clock, HistorySize: 100})
	f.cache.OnChange(func(r Ref) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.changed = append(f.changed, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.ctx = ctx
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	if err := f.cache.Start(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	f.eventually("the cache to sync", f.cache.HasSynced)
}

func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	if err := wait.PollUntilContextTimeout(f.ctx, 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		f.t.Fatalf("timed out waiting for %s", what)
	}
}

// state waits until ref's State has reason, and returns it.
func (f *fixture) waitReason(ref Ref, reason string) *State {
	f.t.Helper()
	var s *State
	if err := wait.PollUntilContextTimeout(f.ctx, 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) {
			var ok bool
			s, ok = f.cache.Get(ref)
			return ok && s.Reason == reason, nil
		}); err != nil {
		f.t.Fatalf("%s: want reason %s, have %+v", ref, reason, s)
	}
	return s
}

// secretRequests counts the fake clientset's requests on Secrets by verb
// and, for gets, by name.
func (f *fixture) secretRequests(verb string, name string) int {
	n := 0
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource != "secrets" || a.GetVerb() != verb {
			continue
		}
		if g, ok := a.(k8stesting.GetAction); ok && name != "" && g.GetName() != name {
			continue
		}
		n++
	}
	return n
}

func (f *fixture) putSecret(s *corev1.Secret) {
	f.t.Helper()
	secrets := f.kube.CoreV1().Secrets(s.Namespace)
	_, err := secrets.Create(f.ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(f.ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) putIssuer(u *unstructured.Unstructured) {
	f.t.Helper()
	var res dynamic.ResourceInterface = f.dyn.Resource(ClusterIssuerGVR)
	if u.GetNamespace() != "" {
		res = f.dyn.Resource(IssuerGVR).Namespace(u.GetNamespace())
	}
	_, err := res.Create(f.ctx, u, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = res.Update(f.ctx, u, metav1.UpdateOptions{})
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) deleteIssuer(ns, name string) {
	f.t.Helper()
	var err error
	if ns == "" {
		err = f.dyn.Resource(ClusterIssuerGVR).Delete(f.ctx, name, metav1.DeleteOptions{})
	} else {
		err = f.dyn.Resource(IssuerGVR).Namespace(ns).Delete(f.ctx, name, metav1.DeleteOptions{})
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// entries is what the Secret reader tracks, by key: CA issuer references
// and holders.
func (f *fixture) entries() map[SecretKey]string {
	r := f.cache.secrets
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[SecretKey]string{}
	for k, e := range r.entries {
		out[k] = fmt.Sprintf("issuers=%d holders=%d cached=%v", e.issuers, len(e.holders), e.secret != nil)
	}
	return out
}

func issuerRef(ns, name string) Ref {
	if ns == "" {
		return Ref{Kind: KindClusterIssuer, Name: name}
	}
	return Ref{Kind: KindIssuer, Namespace: ns, Name: name}
}

func testCA(name string) *testpki.CA {
	return testpki.MustCA(testpki.CAOptions{CommonName: name, NotBefore: fixtureNow.Add(-time.Hour), NotAfter: fixtureNow.Add(time.Hour)})
}

func TestCacheReadsOnlyReferencedSecretsThroughOneWatch(t *testing.T) {
	teamCA, clusterCA := testCA("team"), testCA("cluster")
	f := newFixture(t, []runtime.Object{
		caIssuerObject("team", "a", "ca"),
		caIssuerObject("team", "b", "ca"), // shares a's Secret
		caIssuerObject("", "cluster", "cluster-ca"),
		caIssuerObject("team", "missing", "nope"),
		issuerFixture("team", "self", map[string]interface{}{"selfSigned": map[string]interface{}{}}),
	},
		caSecret("team", "ca", "10", teamCA),
		caSecret("cert-manager", "cluster-ca", "11", clusterCA),
		caSecret("team", "unrelated", "12", testCA("unrelated")),
	)
	f.start()

	for _, ref := range []Ref{issuerRef("team", "a"), issuerRef("team", "b"), issuerRef("", "cluster"), issuerRef("team", "self")} {
		if s, _ := f.cache.Get(ref); s == nil || !s.Ready {
			t.Errorf("%s: want ready, have %+v", ref, s)
		}
	}
	if s, _ := f.cache.Get(issuerRef("team", "missing")); s == nil || s.Reason != ReasonSecretNotFound {
		t.Errorf("missing Secret: have %+v", s)
	}
	if s, _ := f.cache.Get(issuerRef("", "cluster")); s.CA == nil || s.CA.Certificate.Subject.CommonName != "cluster" || s.Secret != (SecretKey{"cert-manager", "cluster-ca"}) {
		t.Errorf("ClusterIssuer reads its Secret from the cluster resource namespace: have %+v", s)
	}

	// One watch (and one list) for all Secrets; one GET per referenced
	// Secret that exists; none for the missing one (the list said it does
	// not exist) or the unrelated one.
	for verb, want := range map[string]int{"watch": 1, "list": 1} {
		if got := f.secretRequests(verb, ""); got != want {
			t.Errorf("%d %s requests on secrets, want %d", got, verb, want)
		}
	}
	for name, want := range map[string]int{"ca": 1, "cluster-ca": 1, "nope": 0, "unrelated": 0} {
		if got := f.secretRequests("get", name); got != want {
			t.Errorf("%d GETs of Secret %s, want %d", got, name, want)
		}
	}
	if got := f.cache.CachedSecrets(); got != 2 {
		t.Errorf("CachedSecrets = %d, want 2", got)
	}
	want := map[SecretKey]string{
		{"team", "ca"}:                 "issuers=2 holders=0 cached=true",
		{"cert-manager", "cluster-ca"}: "issuers=1 holders=0 cached=true",
		{"team", "nope"}:               "issuers=1 holders=0 cached=false",
	}
	if got := f.entries(); !mapsEqual(got, want) {
		t.Errorf("secret entries %v, want %v", got, want)
	}
	// What is cached of a Secret is its CA material only.
	s, err := f.cache.GetSecret(f.ctx, SecretKey{"team", "ca"})
	if err != nil || len(s.Data) != 2 || s.Data["unrelated"] != nil {
		t.Errorf("cached Secret: %v %v", s, err)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSecretReadsFollowReferences(t *testing.T) {
	f := newFixture(t, []runtime.Object{caIssuerObject("team", "a", "ca"), caIssuerObject("team", "b", "ca")},
		caSecret("team", "ca", "10", testCA("one")), caSecret("team", "other", "20", testCA("two")))
	f.start()
	key, other := SecretKey{"team", "ca"}, SecretKey{"team", "other"}

	f.deleteIssuer("team", "a")
	f.eventually("a gone", func() bool { _, ok := f.cache.Get(issuerRef("team", "a")); return !ok })
	if got := f.entries()[key]; got != "issuers=1 holders=0 cached=true" {
		t.Errorf("after one of two issuers went: %s", got)
	}

	// b moves to another Secret: the first is forgotten, the second read.
	b := caIssuerObject("team", "b", "other")
	f.putIssuer(b)
	s := f.waitReason(issuerRef("team", "b"), ReasonReady)
	f.eventually("b reads the other Secret", func() bool {
		s, _ = f.cache.Get(issuerRef("team", "b"))
		return s.Secret == other && s.CA != nil && s.CA.Certificate.Subject.CommonName == "two"
	})
	if got := f.entries(); !mapsEqual(got, map[SecretKey]string{other: "issuers=1 holders=0 cached=true"}) {
		t.Errorf("after b moved: %v", got)
	}

	// A change to a Secret nobody references costs nothing.
	gets := f.secretRequests("get", "")
	f.putSecret(caSecret("team", "ca", "11", testCA("one again")))
	f.deleteIssuer("team", "b")
	f.eventually("b gone", func() bool { _, ok := f.cache.Get(issuerRef("team", "b")); return !ok })
	if got := f.entries(); len(got) != 0 {
		t.Errorf("no issuer left, entries %v", got)
	}
	if got := f.secretRequests("get", ""); got != gets {
		t.Errorf("%d GETs after the reference went, want none", got-gets)
	}
	if got := f.cache.CachedSecrets(); got != 0 {
		t.Errorf("CachedSecrets = %d with no issuer", got)
	}

	// Referenced again: read again.
	f.putIssuer(caIssuerObject("team", "a", "ca"))
	s = f.waitReason(issuerRef("team", "a"), ReasonReady)
	if s.CA.Certificate.Subject.CommonName != "one again" {
		t.Errorf("re-referenced Secret: CA %s", s.CA.Certificate.Subject)
	}
}

func TestSecretChangesReachTheStates(t *testing.T) {
	f := newFixture(t, []runtime.Object{caIssuerObject("team", "a", "ca")})
	f.start()
	ref := issuerRef("team", "a")
	first := f.waitReason(ref, ReasonSecretNotFound)
	if got := f.secretRequests("get", "ca"); got != 0 {
		t.Errorf("%d GETs of a Secret the list said is missing", got)
	}

	f.putSecret(caSecret("team", "ca", "5", testCA("first")))
	ready := f.waitReason(ref, ReasonReady)
	if ready.ResourceVersion <= first.ResourceVersion || ready.CA.Certificate.Subject.CommonName != "first" {
		t.Errorf("after create: %+v", ready)
	}

	// Rotation: a new version is read, parsed and published.
	f.putSecret(caSecret("team", "ca", "6", testCA("second")))
	f.eventually("the rotated CA", func() bool {
		s, _ := f.cache.Get(ref)
		return s.CA != nil && s.CA.Certificate.Subject.CommonName == "second"
	})

	// Garbage, then deletion.
	bad := caSecret("team", "ca", "7", testCA("x"))
	bad.Data[signers.TLSKeyKey] = []byte("junk")
	f.putSecret(bad)
	f.waitReason(ref, ReasonSecretInvalid)
	if err := f.kube.CoreV1().Secrets("team").Delete(f.ctx, "ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone := f.waitReason(ref, ReasonSecretNotFound)
	if gone.CA != nil {
		t.Errorf("deleted Secret still has a CA: %+v", gone)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.changed); n < 5 {
		t.Errorf("OnChange called %d times, want one per transition (5)", n)
	}
}

func TestAnUnreadableSecretIsRetriedAndDoesNotBlockSync(t *testing.T) {
	f := newFixture(t, []runtime.Object{caIssuerObject("team", "a", "ca")}, caSecret("team", "ca", "3", testCA("ca")))
	var mu sync.Mutex
	forbidden := true
	f.kube.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if forbidden {
			return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "ca", errors.New("RBAC says no"))
		}
		return false, nil, nil
	})
	f.start() // the failed read is an answer
	ref := issuerRef("team", "a")
	s := f.waitReason(ref, ReasonPending)
	if !strings.Contains(s.Message, "reading CA Secret team/ca") || !strings.Contains(s.Message, "RBAC says no") {
		t.Errorf("message %q", s.Message)
	}
	mu.Lock()
	forbidden = false
	mu.Unlock()
	f.eventually("a retried read", func() bool {
		s, _ := f.cache.Get(ref)
		return s.Ready
	})
}

func TestHasSyncedWaitsForTheIssuerHandlers(t *testing.T) {
	var objs []runtime.Object
	for i := range 50 {
		objs = append(objs, caIssuerObject("team", fmt.Sprintf("i%d", i), fmt.Sprintf("ca%d", i)))
	}
	f := newFixture(t, objs)
	if f.cache.HasSynced() {
		t.Fatal("synced before Start")
	}
	if err := f.cache.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.cache.Start(f.ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	// Hold the handlers back: the informers sync, the Cache must not.
	f.cache.mu.Lock()
	f.eventually("the informers to sync", func() bool {
		return f.cache.informers[0].HasSynced() && f.cache.informers[1].HasSynced()
	})
	time.Sleep(50 * time.Millisecond)
	synced := f.cache.HasSynced()
	f.cache.mu.Unlock()
	if synced {
		t.Fatal("HasSynced before the handlers saw the listed issuers")
	}
	f.eventually("the cache to sync", f.cache.HasSynced)
	states, _ := f.cache.List(KindIssuer, "")
	if len(states) != 50 {
		t.Fatalf("synced with %d of 50 issuers", len(states))
	}
	for _, s := range states {
		if s.Reason != ReasonSecretNotFound {
			t.Errorf("%s synced with reason %s, want every Secret answered", s.Issuer.Ref, s.Reason)
		}
	}
}

func TestWatchSecretTellsHoldersOfChanges(t *testing.T) {
	f := newFixture(t, []runtime.Object{caIssuerObject("team", "a", "ca")}, caSecret("team", "ca", "1", testCA("ca")))
	type note struct {
		key     SecretKey
		holders string
	}
	notes := make(chan note, 10)
	f.cache.OnSecretChange(func(key SecretKey, holders []string) {
		notes <- note{key, strings.Join(holders, ",")}
	})
	f.start()
	keyKey := SecretKey{"team", "key"}
	expect := func(want note) {
		t.Helper()
		select {
		case n := <-notes:
			if n != want {
				t.Errorf("notified %+v, want %+v", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification, want %+v", want)
		}
	}
	none := func() {
		t.Helper()
		select {
		case n := <-notes:
			t.Errorf("unexpected notification %+v", n)
		case <-time.After(100 * time.Millisecond):
		}
	}

	f.cache.WatchSecret("csr-1", keyKey)
	f.cache.WatchSecret("csr-2", keyKey)
	f.cache.WatchSecret("csr-2", keyKey) // again: no-op
	if _, err := f.cache.GetSecret(f.ctx, keyKey); !apierrors.IsNotFound(err) {
		t.Errorf("GetSecret of a missing Secret: %v, want NotFound", err)
	}
	keySecret := caSecret("team", "key", "2", testCA("self"))
	f.putSecret(keySecret)
	expect(note{keyKey, "csr-1,csr-2"})
	got, err := f.cache.GetSecret(f.ctx, keyKey)
	if err != nil || string(got.Data[signers.TLSKeyKey]) != string(keySecret.Data[signers.TLSKeyKey]) || got.Data["unrelated"] != nil {
		t.Errorf("GetSecret: %v %v", got, err)
	}
	if want := map[SecretKey]string{{"team", "ca"}: "issuers=1 holders=0 cached=true", keyKey: "issuers=0 holders=2 cached=false"}; !mapsEqual(f.entries(), want) {
		t.Errorf("entries %v, want %v (a held Secret's content is not kept)", f.entries(), want)
	}

	f.cache.ReleaseSecrets("csr-1")
	keySecret.ResourceVersion = "3"
	f.putSecret(keySecret)
	expect(note{keyKey, "csr-2"})
	f.cache.ReleaseSecrets("csr-2")
	f.cache.ReleaseSecrets("never-held")
	if _, ok := f.entries()[keyKey]; ok {
		t.Errorf("released Secret still tracked: %v", f.entries())
	}
	if err := f.kube.CoreV1().Secrets("team").Delete(f.ctx, "key", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	none()

	// A CA Secret is served from the cache, without a request; so is its absence.
	f.cache.WatchSecret("csr-3", SecretKey{"team", "ca"})
	gets := f.secretRequests("get", "")
	if s, err := f.cache.GetSecret(f.ctx, SecretKey{"team", "ca"}); err != nil || s.ResourceVersion != "1" {
		t.Errorf("GetSecret of the CA Secret: %v %v", s, err)
	}
	if n := f.secretRequests("get", ""); n != gets {
		t.Errorf("GetSecret of a cached Secret made %d requests", n-gets)
	}
	if err := f.kube.CoreV1().Secrets("team").Delete(f.ctx, "ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(note{SecretKey{"team", "ca"}, "csr-3"})
	f.waitReason(issuerRef("team", "a"), ReasonSecretNotFound)
	if _, err := f.cache.GetSecret(f.ctx, SecretKey{"team", "ca"}); !apierrors.IsNotFound(err) {
		t.Errorf("GetSecret of the deleted CA Secret: %v, want NotFound", err)
	}
}

func TestValidityTickerRecomputesOnTheClock(t *testing.T) {
	ca := testCA("short") // valid for an hour either side of fixtureNow
	f := newFixture(t, []runtime.Object{caIssuerObject("team", "a", "ca")}, caSecret("team", "ca", "1", ca))
	f.start()
	ref := issuerRef("team", "a")
	ready := f.waitReason(ref, ReasonReady)
	f.clock.Step(2 * time.Hour)
	var expired *State
	f.eventually("the CA to expire", func() bool {
		f.clock.Step(16 * time.Second) // past the check period, whenever the ticker started
		expired, _ = f.cache.Get(ref)
		return expired.Reason == ReasonCAExpired
	})
	if expired.Ready || !expired.LastTransitionTime.After(ready.LastTransitionTime) || expired.CA != ready.CA {
		t.Errorf("expired state %+v after %+v", expired, ready)
	}
}

func TestLastTransitionTimeMovesOnlyWithReadyOrReason(t *testing.T) {
	f := newFixture(t, []runtime.Object{caIssuerObject("team", "a", "ca")}, caSecret("team", "ca", "1", testCA("one")))
	f.start()
	ref := issuerRef("team", "a")
	first := f.waitReason(ref, ReasonReady)
	f.clock.Step(time.Minute)
	f.putSecret(caSecret("team", "ca", "2", testCA("two")))
	f.eventually("the new CA", func() bool {
		s, _ := f.cache.Get(ref)
		return s.CA.Certificate.Subject.CommonName == "two"
	})
	second, _ := f.cache.Get(ref)
	if !second.LastTransitionTime.Equal(first.LastTransitionTime) {
		t.Errorf("a new CA, still ready: LastTransitionTime moved from %s to %s", first.LastTransitionTime, second.LastTransitionTime)
	}
	if err := f.kube.CoreV1().Secrets("team").Delete(f.ctx, "ca", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	third := f.waitReason(ref, ReasonSecretNotFound)
	if !third.LastTransitionTime.Equal(fixtureNow.Add(time.Minute)) {
		t.Errorf("not ready: LastTransitionTime %s, want %s", third.LastTransitionTime, fixtureNow.Add(time.Minute))
	}
}

func TestIssuerSpecChangesAndBadObjects(t *testing.T) {
	f := newFixture(t, []runtime.Object{issuerFixture("team", "x", map[string]interface{}{"vault": map[string]interface{}{}})})
	f.start()
	ref := issuerRef("team", "x")
	f.waitReason(ref, ReasonUnsupportedIssuer)
	// The same issuer becomes a CA issuer: its Secret is read from then on.
	f.putIssuer(caIssuerObject("team", "x", "ca"))
	f.waitReason(ref, ReasonSecretNotFound)
	// And SelfSigned: the Secret is released.
	f.putIssuer(issuerFixture("team", "x", map[string]interface{}{"selfSigned": map[string]interface{}{}}))
	f.waitReason(ref, ReasonReady)
	if got := f.entries(); len(got) != 0 {
		t.Errorf("entries %v after the CA spec went", got)
	}
	// An issuer with a bad spec is shown, not ready.
	f.putIssuer(issuerFixture("team", "bad", map[string]interface{}{"ca": map[string]interface{}{"secretName": int64(5)}}))
	s := f.waitReason(issuerRef("team", "bad"), ReasonInvalidConfig)
	if !strings.Contains(s.Message, "secretName") {
		t.Errorf("message %q", s.Message)
	}

	// Objects that are not issuers are ignored, and a tombstone is a delete.
	f.cache.onIssuer("not an object")
	f.cache.onIssuer(&unstructured.Unstructured{Object: map[string]interface{}{"kind": "Pod", "metadata": map[string]interface{}{"name": "p"}}})
	f.cache.onIssuerDelete("not an object")
	f.cache.onIssuerDelete(cache.DeletedFinalStateUnknown{Key: "team/x", Obj: issuerFixture("team", "x", nil)})
	if _, ok := f.cache.Get(ref); ok {
		t.Error("a tombstone did not delete the issuer")
	}
	f.cache.onIssuerDelete(issuerFixture("", "never-seen", nil)) // nothing to delete
}
