package controller

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/signet-dev/signet/internal/issuancetest"
	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/controller/workers"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/backends"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// The issuers every test can name, by signer name.
var (
	refCA        = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
	refClusterCA = issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "cluster-ca"}
	refSelf      = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "self"}
	refVault     = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "vault"}
	refVaultUp   = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "vault-up"} // cert-manager reports it Ready
	refNoSecret  = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "no-secret"}
	refExpired   = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "expired"}
	refExpiring  = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "expiring"} // judged ready, expired since
	refMissing   = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "missing"}
)

// fixture is a controller wired to a fake clientset that behaves as
// kube-apiserver does where sync depends on it (resource versions, 409 on a
// stale write), a fake read model, and the real pipeline and backends.
type fixture struct {
	t        *testing.T
	kube     *fake.Clientset
	source   *issuancetest.Source
	ctrl     *Controller
	events   *record.FakeRecorder
	informer cache.SharedIndexInformer
	dyn      *dynamicfake.FakeDynamicClient // CertificateRequests
	clock    *clocktesting.FakeClock
	root     *testpki.CA
	key      crypto.Signer // the requesters' key, also in Secret ns/app-key
	sars     int
	leading  []bool // answers of Options.Leading, in turn; the last repeats
}

func newFixture(t *testing.T, opts Options, policy issuance.Policy) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Now()), key: issuancetest.Key(t)}
	f.root = testpki.MustCA(testpki.CAOptions{CommonName: "controller root"})
	expiring := testpki.MustCA(testpki.CAOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	f.source = issuancetest.NewSource(
		issuancetest.CAState(t, refCA, f.root),
		issuancetest.CAState(t, refClusterCA, f.root),
		issuancetest.CAState(t, refExpiring, expiring),
		issuancetest.SelfSignedState(refSelf),
		issuancetest.NotReady(refVault, issuers.TypeVault, issuers.ReasonPending, "waiting for cert-manager to report Issuer ns/vault Ready"),
		&issuers.State{Issuer: &issuers.Issuer{Ref: refVaultUp, Type: issuers.TypeVault, ObjectKind: "Issuer"}, Ready: true, Reason: issuers.ReasonReady},
		issuancetest.NotReady(refNoSecret, issuers.TypeCA, issuers.ReasonSecretNotFound, "CA Secret ns/s not found"),
		issuancetest.NotReady(refExpired, issuers.TypeCA, issuers.ReasonCAExpired, "CA certificate expired"),
	)
	f.kube = fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app-key"}, Data: map[string][]byte{signers.TLSKeyKey: testpki.KeyPEM(f.key)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other-key"}, Data: map[string][]byte{signers.TLSKeyKey: testpki.KeyPEM(issuancetest.Key(t))}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "junk-key"}, Data: map[string][]byte{signers.TLSKeyKey: []byte("junk")}},
	)
	f.kube.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		f.sars++
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		sar.Status.Allowed = sar.Spec.User != "mallory"
		return true, sar, nil
	})
	// Optimistic concurrency, as kube-apiserver has it: a write must carry
	// the current resource version, and gets a new one.
	f.kube.PrependReactor("update", "certificatesigningrequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
		csr := a.(clienttesting.UpdateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		cur, err := f.kube.Tracker().Get(a.GetResource(), "", csr.Name)
		if err != nil {
			return true, nil, err
		}
		if rv := cur.(*certificatesv1.CertificateSigningRequest).ResourceVersion; rv != csr.ResourceVersion {
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), csr.Name, fmt.Errorf("the object has been modified (%s, not %s)", rv, csr.ResourceVersion))
		}
		n, _ := strconv.Atoi(csr.ResourceVersion)
		csr.ResourceVersion = strconv.Itoa(n + 1)
		return false, nil, nil
	})
	if opts.Clock == nil {
		opts.Clock = f.clock
	}
	if opts.Leading == nil {
		opts.Leading = func() bool {
			if len(f.leading) == 0 {
				return true
			}
			l := f.leading[0]
			if len(f.leading) > 1 {
				f.leading = f.leading[1:]
			}
			return l
		}
	}
	f.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{certificaterequest.GVR: "CertificateRequestList"})
	pipeline := issuance.New(f.source,
		backends.New(issuance.Deps{Secrets: issuance.NewSecretGetter(f.kube), ClusterResourceNamespace: "cert-manager",
			Dynamic: f.dyn, Context: t.Context(), CertificateRequests: issuance.CertificateRequestOptions{Namespace: "signet-system"}}),
		policy, issuance.NewReferenceChecker(f.kube), f.clock)
	factory := informers.NewSharedInformerFactory(f.kube, 0)
	csrInformer := factory.Certificates().V1().CertificateSigningRequests()
	ctrl, err := New(f.kube, csrInformer, f.source, pipeline, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.events = record.NewFakeRecorder(100)
	ctrl.recorder = f.events
	f.ctrl, f.informer = ctrl, csrInformer.Informer()
	return f
}

type csrOption func(*certificatesv1.CertificateSigningRequest)

func approved(c *certificatesv1.CertificateSigningRequest) {
	c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, LastUpdateTime: metav1.Now()})
}

func condition(t certificatesv1.RequestConditionType) csrOption {
	return func(c *certificatesv1.CertificateSigningRequest) {
		c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue})
	}
}

func annotation(k, v string) csrOption {
	return func(c *certificatesv1.CertificateSigningRequest) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = v
	}
}

func requestedBy(user string) csrOption {
	return func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Username = user }
}

func pkcs10(b []byte) csrOption {
	return func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = b }
}

// addCSR puts a CSR for signer in kube-apiserver and in the informer's cache.
func (f *fixture) addCSR(name, signer string, opts ...csrOption) *certificatesv1.CertificateSigningRequest {
	f.t.Helper()
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", CreationTimestamp: metav1.NewTime(f.clock.Now())},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: signer,
			Request:    issuancetest.CSR(f.t, f.key, name, name+".example.com"),
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
			Username:   "alice",
		},
	}
	for _, o := range opts {
		o(csr)
	}
	if err := f.kube.Tracker().Add(csr.DeepCopy()); err != nil {
		f.t.Fatal(err)
	}
	obj, _ := f.ctrl.slimCSR(csr.DeepCopy())
	if err := f.informer.GetIndexer().Add(obj); err != nil {
		f.t.Fatal(err)
	}
	return csr
}

// current is the CSR as kube-apiserver has it.
func (f *fixture) current(name string) *certificatesv1.CertificateSigningRequest {
	f.t.Helper()
	csr, err := f.kube.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return csr
}

// writes are the CSR writes sync sent: "update" or "update/status".
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.kube.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "certificatesigningrequests" {
			out = append(out, strings.TrimSuffix("update/"+a.GetSubresource(), "/"))
		}
	}
	return out
}

func (f *fixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func failedCondition(csr *certificatesv1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequestCondition {
	for i, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateFailed {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

// TestSync drives one CSR through sync for every outcome, against the real
// pipeline and backends, and checks what was written and recorded.
func TestSync(t *testing.T) {
	other := issuancetest.Key(t)
	tests := []struct {
		desc    string
		signer  string
		opts    []csrOption
		options Options
		policy  issuance.Policy

		wantErr     bool     // sync returns an error: retried with backoff
		wantWrites  []string // CSR writes, in order
		wantEvent   string   // "<type> <reason>" prefix of the one event; empty: none
		wantFailed  string   // reason of the Failed condition written
		wantIssued  bool
		wantCAAnnot bool
		wantSARs    int
	}{
		// Ignored: not ours, or finished.
		{desc: "another signer's CSR", signer: "kubernetes.io/kube-apiserver-client", opts: []csrOption{approved}},
		{desc: "being deleted", signer: refCA.SignerName(), opts: []csrOption{approved, func(c *certificatesv1.CertificateSigningRequest) {
			now := metav1.Now()
			c.DeletionTimestamp = &now
		}}},
		{desc: "already issued", signer: refCA.SignerName(), opts: []csrOption{approved, func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("x") }}},
		{desc: "already failed", signer: refCA.SignerName(), opts: []csrOption{approved, condition(certificatesv1.CertificateFailed)}},
		{desc: "denied", signer: refCA.SignerName(), opts: []csrOption{condition(certificatesv1.CertificateDenied)}},
		{desc: "denied after approval", signer: refCA.SignerName(), opts: []csrOption{approved, condition(certificatesv1.CertificateDenied)}},

		// Waiting, per cause: an event, no write.
		{desc: "not approved, just created", signer: refCA.SignerName(), options: Options{WaitingApprovalEventDelay: time.Minute}},
		{desc: "not approved for longer than the delay", signer: refCA.SignerName(), wantEvent: "Normal WaitingApproval"},
		{desc: "issuer not found", signer: refMissing.SignerName(), opts: []csrOption{approved}, wantEvent: "Warning IssuerNotFound"},
		{desc: "Vault issuer cert-manager has not reported Ready", signer: refVault.SignerName(), opts: []csrOption{approved}, wantSARs: 1, wantEvent: "Warning IssuerNotReady"},
		{desc: "Vault issuer: waits for its CertificateRequest", signer: refVaultUp.SignerName(), opts: []csrOption{approved}, wantSARs: 1, wantEvent: "Warning CertificateRequestPending"},
		{desc: "CA Secret missing", signer: refNoSecret.SignerName(), opts: []csrOption{approved}, wantSARs: 1, wantEvent: "Warning SecretMissing"},
		{desc: "CA expired", signer: refExpired.SignerName(), opts: []csrOption{approved}, wantSARs: 1, wantEvent: "Warning IssuerNotReady"},
		{desc: "CA expired since judged ready: backoff", signer: refExpiring.SignerName(), opts: []csrOption{approved}, wantSARs: 1,
			wantErr: true, wantEvent: "Warning IssuerNotReady"},
		{desc: "SelfSigned key Secret missing: backoff", signer: refSelf.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationPrivateKeySecretName, "absent")},
			wantSARs: 1, wantErr: true, wantEvent: "Warning SecretMissing"},
		{desc: "SelfSigned key Secret unreadable: backoff", signer: refSelf.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationPrivateKeySecretName, "junk-key")},
			wantSARs: 1, wantErr: true, wantEvent: "Warning ErrorParsePrivateKey"},

		// Failed, per reason: a Failed condition and a Warning event.
		{desc: "requester may not reference the issuer", signer: refCA.SignerName(), opts: []csrOption{approved, requestedBy("mallory")},
			wantSARs: 2, wantWrites: []string{"update/status"}, wantFailed: wire.ReasonDeniedReference, wantEvent: "Warning DeniedReference"},
		{desc: "ClusterIssuer reference checked by flag", signer: refClusterCA.SignerName(), opts: []csrOption{approved, requestedBy("mallory")},
			policy: issuance.Policy{ClusterSignerReferenceCheck: true}, wantSARs: 2, wantWrites: []string{"update/status"}, wantFailed: wire.ReasonDeniedReference, wantEvent: "Warning DeniedReference"},
		{desc: "request-duration not a duration", signer: refCA.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationRequestDuration, "forever")},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantFailed: wire.ReasonErrorParseDuration, wantEvent: "Warning ErrorParseDuration"},
		{desc: "request-duration under 10 minutes", signer: refCA.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationRequestDuration, "5m")},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantFailed: wire.ReasonInvalidDuration, wantEvent: "Warning InvalidDuration"},
		{desc: "request not PEM", signer: refCA.SignerName(), opts: []csrOption{approved, pkcs10([]byte("junk"))},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantFailed: signers.ReasonErrorParseCSR, wantEvent: "Warning ErrorParseCSR"},
		{desc: "SelfSigned without a key annotation", signer: refSelf.SignerName(), opts: []csrOption{approved},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantFailed: wire.ReasonMissingAnnotation, wantEvent: "Warning MissingAnnotation"},
		{desc: "SelfSigned with another key", signer: refSelf.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationPrivateKeySecretName, "other-key")},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantFailed: wire.ReasonErrorKeyMatch, wantEvent: "Warning ErrorKeyMatch"},

		// Issued.
		{desc: "CA issuer", signer: refCA.SignerName(), opts: []csrOption{approved},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantIssued: true},
		{desc: "ClusterIssuer, not checked by default", signer: refClusterCA.SignerName(), opts: []csrOption{approved, requestedBy("mallory")},
			wantWrites: []string{"update/status"}, wantIssued: true},
		{desc: "CA annotation and an event, when asked", signer: refCA.SignerName(), opts: []csrOption{approved},
			options:  Options{WriteCAAnnotation: true, CertificateIssuedEvents: true},
			wantSARs: 1, wantWrites: []string{"update", "update/status"}, wantIssued: true, wantCAAnnot: true, wantEvent: "Normal CertificateIssued"},
		{desc: "SelfSigned issuer", signer: refSelf.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationPrivateKeySecretName, "app-key")},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantIssued: true},
		{desc: "request-is-ca", signer: refCA.SignerName(), opts: []csrOption{approved, annotation(wire.AnnotationRequestIsCA, "true"),
			pkcs10(issuancetest.CSR(t, other, "sub CA"))},
			wantSARs: 1, wantWrites: []string{"update/status"}, wantIssued: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if tt.options.WaitingApprovalEventDelay == 0 {
				tt.options.WaitingApprovalEventDelay = time.Nanosecond
			}
			f := newFixture(t, tt.options, tt.policy)
			csr := f.addCSR("req", tt.signer, tt.opts...)
			f.clock.Step(time.Second)

			err := f.ctrl.sync(context.Background(), "req")
			if (err != nil) != tt.wantErr {
				t.Fatalf("sync: %v, want error: %v", err, tt.wantErr)
			}
			if got := f.writes(); strings.Join(got, ",") != strings.Join(tt.wantWrites, ",") {
				t.Errorf("writes %v, want %v", got, tt.wantWrites)
			}
			if f.sars != tt.wantSARs {
				t.Errorf("%d SubjectAccessReviews, want %d", f.sars, tt.wantSARs)
			}
			events := f.drainEvents()
			switch {
			case tt.wantEvent == "" && len(events) > 0:
				t.Errorf("events %q, want none", events)
			case tt.wantEvent != "" && (len(events) != 1 || !strings.HasPrefix(events[0], tt.wantEvent+" ")):
				t.Errorf("events %q, want one %q", events, tt.wantEvent)
			}

			got := f.current("req")
			if tt.wantFailed != "" {
				c := failedCondition(got)
				if c == nil || c.Reason != tt.wantFailed || c.Message == "" || c.LastUpdateTime.IsZero() {
					t.Errorf("Failed condition %+v, want reason %s", c, tt.wantFailed)
				}
			}
			if tt.wantIssued {
				leaf := issuancetest.Leaf(t, got.Status.Certificate)
				if leaf.Subject.CommonName != csr.Name && !leaf.IsCA {
					t.Errorf("issued for %q", leaf.Subject.CommonName)
				}
				if failedCondition(got) != nil {
					t.Errorf("issued and failed")
				}
			} else if tt.wantFailed == "" && len(got.Status.Certificate) > 0 && len(csr.Status.Certificate) == 0 {
				t.Errorf("a certificate was written")
			}
			if _, has := got.Annotations[wire.AnnotationCA]; has != tt.wantCAAnnot {
				t.Errorf("CA annotation present: %v, want %v", has, tt.wantCAAnnot)
			}
		})
	}
}

// The one WaitingApproval event comes once, however often the CSR is synced,
// and its memory goes when the CSR is approved.
func TestWaitingApprovalEventOnce(t *testing.T) {
	f := newFixture(t, Options{WaitingApprovalEventDelay: 10 * time.Second}, issuance.Policy{})
	f.addCSR("req", refCA.SignerName())
	for i := 0; i < 3; i++ {
		if err := f.ctrl.sync(context.Background(), "req"); err != nil {
			t.Fatal(err)
		}
	}
	if ev := f.drainEvents(); len(ev) != 0 {
		t.Fatalf("events %q before the delay", ev)
	}
	f.clock.Step(11 * time.Second)
	for i := 0; i < 3; i++ {
		if err := f.ctrl.sync(context.Background(), "req"); err != nil {
			t.Fatal(err)
		}
	}
	if ev := f.drainEvents(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal WaitingApproval") {
		t.Fatalf("events %q, want one WaitingApproval", ev)
	}
	if _, ok := f.ctrl.waitingApproval.Load(types.UID("uid-req")); !ok {
		t.Fatal("WaitingApproval not remembered")
	}
	f.ctrl.forget(f.current("req"))
	if _, ok := f.ctrl.waitingApproval.Load(types.UID("uid-req")); ok {
		t.Error("WaitingApproval remembered after the CSR went")
	}
}

// A write that conflicts (the CSR changed since it was read) is counted,
// returned for a retry, and the retry, on the current CSR, decides again.
func TestSyncConflictOnWrite(t *testing.T) {
	for _, tt := range []struct {
		desc  string
		opts  []csrOption
		write string
	}{
		{"certificate", []csrOption{approved}, writeCertificate},
		{"failed condition", []csrOption{approved, annotation(wire.AnnotationRequestDuration, "forever")}, writeFailed},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFixture(t, Options{}, issuance.Policy{})
			f.addCSR("req", refCA.SignerName(), tt.opts...)
			// Someone else writes first: kube-apiserver's copy moves on, the cache's does not.
			cur := f.current("req")
			cur.Labels = map[string]string{"touched": "yes"}
			if _, err := f.kube.CertificatesV1().CertificateSigningRequests().Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			before := testutil.ToFloat64(writeConflicts.WithLabelValues(tt.write))
			err := f.ctrl.sync(context.Background(), "req")
			if !apierrors.IsConflict(errors.Unwrap(err)) {
				t.Fatalf("sync: %v, want a conflict", err)
			}
			if got := testutil.ToFloat64(writeConflicts.WithLabelValues(tt.write)) - before; got != 1 {
				t.Errorf("signet_csr_write_conflicts_total{write=%q} grew by %v, want 1", tt.write, got)
			}
			if got := f.current("req"); len(got.Status.Certificate) > 0 || failedCondition(got) != nil {
				t.Errorf("a conflicting write landed")
			}
			// The informer delivers the other write; the retry succeeds.
			if err := f.informer.GetIndexer().Update(f.current("req")); err != nil {
				t.Fatal(err)
			}
			if err := f.ctrl.sync(context.Background(), "req"); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := f.current("req"); len(got.Status.Certificate) == 0 && failedCondition(got) == nil {
				t.Errorf("the retry wrote nothing")
			}
		})
	}
}

// A CSR synced again before the informer has seen signet's own write is not
// signed again: the controller remembers what it wrote.
func TestSyncFromAStaleCacheDoesNotSignAgain(t *testing.T) {
	f := newFixture(t, Options{}, issuance.Policy{})
	f.addCSR("req", refCA.SignerName(), approved)
	if err := f.ctrl.sync(context.Background(), "req"); err != nil {
		t.Fatal(err)
	}
	issued := f.current("req")
	if len(issued.Status.Certificate) == 0 {
		t.Fatal("not issued")
	}
	// The informer's copy is still the unsigned one.
	before := testutil.ToFloat64(writeConflicts.WithLabelValues(writeCertificate))
	for i := 0; i < 3; i++ {
		if err := f.ctrl.sync(context.Background(), "req"); err != nil {
			t.Fatalf("sync from the stale cache: %v", err)
		}
	}
	if w := f.writes(); len(w) != 1 {
		t.Errorf("writes %v, want the one certificate", w)
	}
	if got := testutil.ToFloat64(writeConflicts.WithLabelValues(writeCertificate)) - before; got != 0 {
		t.Errorf("%v conflicts", got)
	}
	if string(f.current("req").Status.Certificate) != string(issued.Status.Certificate) {
		t.Error("the certificate changed")
	}
	// Once the informer catches up the memory goes, and the informer's copy rules.
	f.ctrl.onAddOrUpdate(issued)
	if err := f.informer.GetIndexer().Update(issued); err != nil {
		t.Fatal(err)
	}
	if err := f.ctrl.sync(context.Background(), "req"); err != nil || len(f.writes()) != 1 {
		t.Errorf("after the informer caught up: %v, writes %v", err, f.writes())
	}
}

// A replica that cannot be sure it still leads neither signs nor writes.
func TestSyncNotLeading(t *testing.T) {
	for _, tt := range []struct {
		desc     string
		leading  []bool
		opts     Options
		wantSARs int
	}{
		{"before signing", []bool{false}, Options{}, 0},
		{"before writing the certificate", []bool{true, false}, Options{}, 1},
		{"before writing the CA annotation", []bool{true, false}, Options{WriteCAAnnotation: true}, 1},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFixture(t, tt.opts, issuance.Policy{})
			f.leading = tt.leading
			f.addCSR("req", refCA.SignerName(), approved)
			if err := f.ctrl.sync(context.Background(), "req"); !errors.Is(err, workers.ErrNotLeading) {
				t.Fatalf("sync: %v, want ErrNotLeading", err)
			}
			if w := f.writes(); len(w) != 0 {
				t.Errorf("writes %v while not leading", w)
			}
			if f.sars != tt.wantSARs {
				t.Errorf("%d SubjectAccessReviews, want %d", f.sars, tt.wantSARs)
			}
		})
	}

	// The failure path checks too.
	f := newFixture(t, Options{}, issuance.Policy{})
	f.leading = []bool{true, false}
	f.addCSR("req", refCA.SignerName(), approved, annotation(wire.AnnotationRequestDuration, "forever"))
	if err := f.ctrl.sync(context.Background(), "req"); !errors.Is(err, workers.ErrNotLeading) || len(f.writes()) != 0 {
		t.Fatalf("sync: %v, writes %v; want ErrNotLeading and none", err, f.writes())
	}

	// The queue loop puts the CSR off quietly and counts it.
	f = newFixture(t, Options{}, issuance.Policy{})
	f.leading = []bool{false}
	f.addCSR("req", refCA.SignerName(), approved)
	before := testutil.ToFloat64(notLeading)
	f.ctrl.queue.Add("req")
	if !f.ctrl.loop().ProcessNext(context.Background()) {
		t.Fatal("queue shut down")
	}
	if got := testutil.ToFloat64(notLeading) - before; got != 1 {
		t.Errorf("signet_csr_not_leading_total grew by %v, want 1", got)
	}
	if f.ctrl.queue.NumRequeues("req") != 0 {
		t.Errorf("put off with rate-limited backoff, want a plain delay")
	}
}
