package certificaterequest

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

func TestName(t *testing.T) {
	a := issuance.Object{Kind: issuance.KindCertificateSigningRequest, Name: "app", UID: "uid-1"}
	if Name(a) != Name(a) {
		t.Fatal("Name is not deterministic")
	}
	if !strings.HasPrefix(Name(a), "app-") {
		t.Errorf("Name(%+v) = %q, want it to start with the CSR's name", a, Name(a))
	}
	b := a
	b.UID = "uid-2"
	if Name(a) == Name(b) {
		t.Errorf("a CSR created again under the same name gets the same CertificateRequest name %q", Name(a))
	}
	for _, name := range []string{"app", strings.Repeat("a", 253), "Weird_Name", "..dots..", "", "a.b.c", strings.Repeat("x.", 126) + "y"} {
		n := Name(issuance.Object{Name: name, UID: "u"})
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			t.Errorf("Name for %q = %q is not a valid object name: %v", name, n, msgs)
		}
	}
}

func cr(conditions ...map[string]interface{}) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{}}
	u.SetNamespace("ns")
	u.SetName("app-1")
	conds := make([]interface{}, len(conditions))
	for i, c := range conditions {
		conds[i] = c
	}
	_ = unstructured.SetNestedSlice(u.Object, conds, "status", "conditions")
	return u
}

func cond(typ, status, reason, message string) map[string]interface{} {
	return map[string]interface{}{"type": typ, "status": status, "reason": reason, "message": message}
}

// request is a CSR's PKCS#10 for a new key, and that key.
func request(t *testing.T) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

// certificateFor is a leaf for pub and a CA, as status.certificate and status.ca hold them.
func certificateFor(t *testing.T, pub crypto.PublicKey) (certPEM, caPEM []byte) {
	t.Helper()
	ca := testpki.MustCA(testpki.CAOptions{})
	tmpl := &x509.Certificate{SerialNumber: ca.Cert.SerialNumber, Subject: pkix.Name{CommonName: "app"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.CertPEM()
}

func TestOutcomeOf(t *testing.T) {
	_, key := request(t)
	_, other := request(t)
	certPEM, caPEM := certificateFor(t, key.Public())
	otherPEM, _ := certificateFor(t, other.Public())
	issued := func(cert []byte) *unstructured.Unstructured {
		u := cr(cond("Approved", "True", "", ""), cond("Ready", "True", "Issued", "Certificate fetched from issuer successfully"))
		_ = unstructured.SetNestedField(u.Object, base64.StdEncoding.EncodeToString(cert), "status", "certificate")
		_ = unstructured.SetNestedField(u.Object, base64.StdEncoding.EncodeToString(caPEM), "status", "ca")
		return u
	}
	tests := []struct {
		desc       string
		cr         *unstructured.Unstructured
		wantReason string // Failed reason, or Waiting reason
		wantIssued bool
		wantIn     string // in the message
		// approvedHere: signet approved it, the object does not show it yet.
		approvedHere bool
	}{
		{desc: "new: waits for approval", cr: cr(), wantReason: wire.ReasonCertificateRequestPending, wantIn: "to be approved"},
		{desc: "approved by signet, not shown yet: waits for the issuer", cr: cr(), approvedHere: true, wantReason: wire.ReasonCertificateRequestPending, wantIn: "Vault Issuer ns/vault to sign"},
		{desc: "approved: waits for the issuer", cr: cr(cond("Approved", "True", "", "")), wantReason: wire.ReasonCertificateRequestPending, wantIn: "Vault Issuer ns/vault to sign"},
		{desc: "pending at cert-manager", cr: cr(cond("Approved", "True", "", ""), cond("Ready", "False", "Pending", "Waiting on order")), wantReason: wire.ReasonCertificateRequestPending},
		{desc: "failed", cr: cr(cond("Approved", "True", "", ""), cond("Ready", "False", "Failed", "vault said no")), wantReason: wire.ReasonFailed, wantIn: "CertificateRequest ns/app-1: vault said no"},
		{desc: "denied by an approver", cr: cr(cond("Denied", "True", "policy.cert-manager.io", "no policy matched")), wantReason: wire.ReasonDenied, wantIn: "no policy matched"},
		{desc: "denied, as cert-manager marks it Ready", cr: cr(cond("Ready", "False", "Denied", "The CertificateRequest was denied")), wantReason: wire.ReasonDenied},
		{desc: "invalid request", cr: cr(cond("Approved", "True", "", ""), cond("InvalidRequest", "True", "BadConfig", "bad usages"), cond("Ready", "False", "Failed", "bad usages")), wantReason: wire.ReasonInvalidRequest, wantIn: "bad usages"},
		{desc: "issued", cr: issued(certPEM), wantIssued: true},
		{desc: "issued for another key", cr: issued(otherPEM), wantReason: wire.ReasonCertificateKeyMismatch},
		{desc: "issued, garbage", cr: issued([]byte("not PEM")), wantReason: wire.ReasonDecodeError},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			out := outcomeOf(tt.cr, tt.approvedHere, key.Public(), "Vault Issuer ns/vault")
			var reason, message string
			switch o := out.(type) {
			case *issuance.Issued:
				if !tt.wantIssued {
					t.Fatalf("Issued, want %s", tt.wantReason)
				}
				if string(o.CertificatePEM) != string(certPEM) || string(o.CAPEM) != string(caPEM) || o.NotAfter.IsZero() {
					t.Errorf("Issued %+v, want status.certificate and status.ca as they are", o)
				}
				return
			case *issuance.Failed:
				reason, message = o.Reason, o.Message
			case *issuance.Waiting:
				if o.For != issuance.WaitCertificateRequest || o.Backoff {
					t.Errorf("Waiting %+v, want for the CertificateRequest, re-driven by its changes", o)
				}
				reason, message = o.Reason, o.Message
			}
			if tt.wantIssued || reason != tt.wantReason || !strings.Contains(message, tt.wantIn) {
				t.Errorf("%T %s: %q; want %s containing %q", out, reason, message, tt.wantReason, tt.wantIn)
			}
		})
	}
}

// fixture is a Backend on a fake dynamic client, and a request to it.
type fixture struct {
	backend *Backend
	client  *dynamicfake.FakeDynamicClient
	req     *issuance.Request
	tmpl    *signers.Template
	state   *issuers.State
	key     crypto.Signer
}

func newFixture(t *testing.T, opts issuance.CertificateRequestOptions, iss *issuers.Issuer, objects ...runtime.Object) *fixture {
	t.Helper()
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: "CertificateRequestList"}, objects...)
	backend := New(issuance.Deps{Dynamic: client, Context: t.Context(), CertificateRequests: opts}).(*Backend)
	pkcs10, key := request(t)
	tmpl, err := signers.BuildTemplate(signers.Input{Request: pkcs10, Usages: []string{"digital signature", "server auth"}, Duration: 24 * time.Hour}, signers.Policy{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		backend: backend,
		client:  client,
		key:     key,
		tmpl:    tmpl,
		state:   &issuers.State{Issuer: iss, Ready: true},
		req: &issuance.Request{
			Object:   issuance.Object{Kind: issuance.KindCertificateSigningRequest, Name: "app", UID: "csr-uid"},
			Signer:   iss.Ref,
			PKCS10:   pkcs10,
			Usages:   []string{"digital signature", "server auth"},
			Approval: "KubectlApprove: This CSR was approved by kubectl certificate approve.",
		},
	}
}

func vaultIssuer() *issuers.Issuer {
	return &issuers.Issuer{Ref: issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "vault"}, Type: issuers.TypeVault, ObjectKind: "Issuer"}
}

func (f *fixture) issue(t *testing.T) issuance.Outcome {
	t.Helper()
	out, err := f.backend.Issue(t.Context(), f.req, f.tmpl, f.state, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) actions(verb, subresource string) int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == verb && a.GetResource() == GVR && a.GetSubresource() == subresource {
			n++
		}
	}
	return n
}

// waitCached waits until the backend's cache holds ns/name as the client has
// it, and returns the client's.
func (f *fixture) waitCached(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		want, err := f.client.Resource(GVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		got, _ := f.backend.get(ns, name)
		// The fake client keeps no resource versions: compare the objects,
		// as the cache slims them.
		if err == nil && got != nil {
			slim := want.DeepCopy()
			unstructured.RemoveNestedField(slim.Object, "spec", "request")
			if equality.Semantic.DeepEqual(got.Object, slim.Object) {
				return want
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache never caught up with CertificateRequest %s/%s", ns, name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIssueCreatesApprovesAndNeverTwice(t *testing.T) {
	f := newFixture(t, issuance.CertificateRequestOptions{Namespace: "signet-system"}, vaultIssuer())
	out := f.issue(t)
	if w, ok := out.(*issuance.Waiting); !ok || w.For != issuance.WaitCertificateRequest {
		t.Fatalf("first Issue: %#v, want Waiting for the CertificateRequest", out)
	}
	name := Name(f.req.Object)
	got := f.waitCached(t, "team", name)

	if u := got.GetLabels()[LabelRequestUID]; u != "csr-uid" {
		t.Errorf("label %s = %q", LabelRequestUID, u)
	}
	if a := got.GetAnnotations()[AnnotationRequest]; a != "CertificateSigningRequest app" {
		t.Errorf("annotation %s = %q", AnnotationRequest, a)
	}
	owners := got.GetOwnerReferences()
	if len(owners) != 1 || owners[0].Kind != "CertificateSigningRequest" || owners[0].APIVersion != "certificates.k8s.io/v1" ||
		owners[0].Name != "app" || owners[0].UID != "csr-uid" || owners[0].Controller == nil || !*owners[0].Controller {
		t.Errorf("ownerReferences = %+v, want the CSR as controller", owners)
	}
	spec, _, _ := unstructured.NestedMap(got.Object, "spec")
	ref := spec["issuerRef"].(map[string]interface{})
	if ref["name"] != "vault" || ref["kind"] != "Issuer" || ref["group"] != "cert-manager.io" {
		t.Errorf("spec.issuerRef = %v", ref)
	}
	if spec["duration"] != "24h0m0s" || spec["isCA"] != nil {
		t.Errorf("spec.duration = %v, isCA = %v; want 24h0m0s, unset", spec["duration"], spec["isCA"])
	}
	if u := spec["usages"].([]interface{}); len(u) != 2 || u[0] != "digital signature" || u[1] != "server auth" {
		t.Errorf("spec.usages = %v", u)
	}
	if r, _ := base64.StdEncoding.DecodeString(spec["request"].(string)); string(r) != string(f.req.PKCS10) {
		t.Errorf("spec.request is not the CSR's request")
	}
	approved, ok := conditionOf(got, "Approved")
	if !ok || approved.Status != "True" || approved.Reason != ReasonApproved ||
		!strings.Contains(approved.Message, "CertificateSigningRequest app") || !strings.Contains(approved.Message, "KubectlApprove") {
		t.Errorf("Approved condition = %+v, want True naming the CSR and its approval", approved)
	}

	// Again and again: found in the cache, neither created nor approved again.
	for range 3 {
		f.issue(t)
	}
	if c, a := f.actions("create", ""), f.actions("update", "status"); c != 1 || a != 1 {
		t.Errorf("%d creates and %d approvals, want one each", c, a)
	}

	// cert-manager signs: the certificate comes back.
	certPEM, caPEM := certificateFor(t, f.key.Public())
	signed := got.DeepCopy()
	conds, _, _ := unstructured.NestedSlice(signed.Object, "status", "conditions")
	_ = unstructured.SetNestedSlice(signed.Object, append(conds, cond("Ready", "True", "Issued", "ok")), "status", "conditions")
	_ = unstructured.SetNestedField(signed.Object, base64.StdEncoding.EncodeToString(certPEM), "status", "certificate")
	_ = unstructured.SetNestedField(signed.Object, base64.StdEncoding.EncodeToString(caPEM), "status", "ca")
	if _, err := f.client.Resource(GVR).Namespace("team").UpdateStatus(t.Context(), signed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitCached(t, "team", name)
	if o, ok := f.issue(t).(*issuance.Issued); !ok || string(o.CertificatePEM) != string(certPEM) {
		t.Fatalf("after cert-manager signed: %#v, want Issued with its certificate", o)
	}
}

func TestIssueAdoptsOneAlreadyThere(t *testing.T) {
	f := newFixture(t, issuance.CertificateRequestOptions{}, vaultIssuer())
	// Made by an earlier leader, not yet in this process's cache: creating
	// it again answers AlreadyExists, and the one there is used.
	existing := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest"}}
	existing.SetNamespace("team")
	existing.SetName(Name(f.req.Object))
	existing.SetLabels(map[string]string{LabelRequestUID: "csr-uid"})
	existing.SetAnnotations(map[string]string{AnnotationRequest: "CertificateSigningRequest app"})
	if !f.backend.synced(t.Context()) {
		t.Fatal("cache did not sync")
	}
	// Hide it from the cache: the fake's watch would deliver it at once.
	f.client.PrependReactor("create", "certificaterequests", func(clienttesting.Action) (bool, runtime.Object, error) {
		return false, nil, nil
	})
	if err := f.client.Tracker().Create(GVR, existing, "team"); err != nil {
		t.Fatal(err)
	}
	got, err := f.backend.create(t.Context(), "team", existing.GetName(), f.req, f.tmpl, f.state.Issuer)
	if err != nil {
		t.Fatalf("create over an existing CertificateRequest: %v, want it adopted", err)
	}
	if got.GetUID() != existing.GetUID() || got.GetLabels()[LabelRequestUID] != "csr-uid" {
		t.Errorf("adopted %+v, want the existing one", got.GetLabels())
	}
	list, err := f.client.Resource(GVR).Namespace("team").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("%d CertificateRequests (%v), want one", len(list.Items), err)
	}
}

func TestIssueConflictWithAForeignObject(t *testing.T) {
	f := newFixture(t, issuance.CertificateRequestOptions{}, vaultIssuer())
	foreign := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest"}}
	foreign.SetNamespace("team")
	foreign.SetName(Name(f.req.Object))
	foreign.SetLabels(map[string]string{LabelRequestUID: "someone-else"})
	if err := f.client.Tracker().Create(GVR, foreign, "team"); err != nil {
		t.Fatal(err)
	}
	f.backend.synced(t.Context())
	f.waitCached(t, "team", foreign.GetName())
	out, ok := f.issue(t).(*issuance.Failed)
	if !ok || out.Reason != wire.ReasonCertificateRequestConflict {
		t.Fatalf("%#v, want Failed/%s", out, wire.ReasonCertificateRequestConflict)
	}
	if f.actions("update", "status") != 0 {
		t.Error("approved a CertificateRequest signet did not make")
	}
}

func TestExternalApprovalLeavesItUnapproved(t *testing.T) {
	f := newFixture(t, issuance.CertificateRequestOptions{ExternalApproval: true}, vaultIssuer())
	w, ok := f.issue(t).(*issuance.Waiting)
	if !ok || !strings.Contains(w.Message, "to be approved") {
		t.Fatalf("%#v, want Waiting to be approved", w)
	}
	if f.actions("update", "status") != 0 {
		t.Error("signet approved with --certificate-request-approval=external")
	}
}

func TestClusterIssuerAndExternalIssuerRefs(t *testing.T) {
	for _, tc := range []struct {
		desc          string
		iss           *issuers.Issuer
		wantNamespace string
		wantRef       map[string]interface{}
		wantMessage   string
	}{
		{desc: "ACME ClusterIssuer: the configured namespace",
			iss:           &issuers.Issuer{Ref: issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "letsencrypt"}, Type: issuers.TypeACME, ObjectKind: "ClusterIssuer"},
			wantNamespace: "signet-system",
			wantRef:       map[string]interface{}{"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
			wantMessage:   "ACME ClusterIssuer letsencrypt"},
		{desc: "external namespaced issuer",
			iss: &issuers.Issuer{Ref: issuers.Ref{Kind: issuers.KindIssuer, External: "testissuers.example.com", Namespace: "team", Name: "ext"},
				Type: issuers.TypeExternal, ObjectKind: "TestIssuer"},
			wantNamespace: "team",
			wantRef:       map[string]interface{}{"name": "ext", "kind": "TestIssuer", "group": "example.com"},
			wantMessage:   "TestIssuer team/ext"},
		{desc: "external cluster-scoped issuer",
			iss: &issuers.Issuer{Ref: issuers.Ref{Kind: issuers.KindClusterIssuer, External: "testclusterissuers.example.com", Name: "ext"},
				Type: issuers.TypeExternal, ObjectKind: "TestClusterIssuer"},
			wantNamespace: "signet-system",
			wantRef:       map[string]interface{}{"name": "ext", "kind": "TestClusterIssuer", "group": "example.com"},
			wantMessage:   "TestClusterIssuer ext"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := newFixture(t, issuance.CertificateRequestOptions{Namespace: "signet-system"}, tc.iss)
			w, ok := f.issue(t).(*issuance.Waiting)
			if !ok || !strings.Contains(w.Message, tc.wantMessage) {
				t.Errorf("%#v, want Waiting naming %s", w, tc.wantMessage)
			}
			got := f.waitCached(t, tc.wantNamespace, Name(f.req.Object))
			ref, _, _ := unstructured.NestedMap(got.Object, "spec", "issuerRef")
			for k, v := range tc.wantRef {
				if ref[k] != v {
					t.Errorf("spec.issuerRef = %v, want %v", ref, tc.wantRef)
					break
				}
			}
		})
	}
}

func TestWithdrawDeletesTheRequestsOnly(t *testing.T) {
	f := newFixture(t, issuance.CertificateRequestOptions{}, vaultIssuer())
	f.issue(t)
	other := *f.req
	other.Object = issuance.Object{Kind: issuance.KindCertificateSigningRequest, Name: "other", UID: "other-uid"}
	if _, err := f.backend.Issue(t.Context(), &other, f.tmpl, f.state, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.backend.Withdraw(t.Context(), f.req.Object, f.state); err != nil {
		t.Fatal(err)
	}
	list, err := f.client.Resource(GVR).Namespace("team").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].GetName() != Name(other.Object) {
		t.Errorf("after Withdraw: %d CertificateRequests, want only the other request's", len(list.Items))
	}
	// Nothing to withdraw is no error.
	if err := f.backend.Withdraw(t.Context(), issuance.Object{Name: "none", UID: types.UID("none")}, f.state); err != nil {
		t.Error(err)
	}
	// Nor is a foreign object at the name: it stays.
	foreign := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest"}}
	foreignReq := issuance.Object{Name: "foreign", UID: "foreign-uid"}
	foreign.SetNamespace("team")
	foreign.SetName(Name(foreignReq))
	foreign.SetLabels(map[string]string{LabelRequestUID: "someone-else"})
	if err := f.client.Tracker().Create(GVR, foreign, "team"); err != nil {
		t.Fatal(err)
	}
	if err := f.backend.Withdraw(t.Context(), foreignReq, f.state); err != nil {
		t.Error(err)
	}
	if _, err := f.client.Resource(GVR).Namespace("team").Get(t.Context(), foreign.GetName(), metav1.GetOptions{}); err != nil {
		t.Errorf("Withdraw deleted an object signet did not make: %v", err)
	}
}

func TestOnChangeNamesTheRequest(t *testing.T) {
	f := newFixture(t, issuance.CertificateRequestOptions{}, vaultIssuer())
	seen := make(chan issuance.Object, 10)
	f.backend.OnChange(func(o issuance.Object) { seen <- o })
	f.issue(t)
	select {
	case o := <-seen:
		if o != f.req.Object {
			t.Errorf("OnChange with %+v, want %+v", o, f.req.Object)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnChange after the CertificateRequest was created")
	}
}
