package computed_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/registry/certmanager/clustersigner"
	"github.com/signet-dev/signet/pkg/registry/certmanager/signer"
)

// Storage-level tests with the read model fed by fake clients; the same
// behaviour through kube-apiserver is covered by test/integration.

func issuer(kind, ns, name string, lbls map[string]interface{}, spec map[string]interface{}) *unstructured.Unstructured {
	md := map[string]interface{}{"name": name, "uid": "uid-" + name}
	if ns != "" {
		md["namespace"] = ns
	}
	if lbls != nil {
		md["labels"] = lbls
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "cert-manager.io/v1", "kind": kind, "metadata": md, "spec": spec,
	}}
}

func startCache(t *testing.T, objs ...runtime.Object) (*issuers.Cache, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	return startCacheWith(t, issuers.Options{}, objs...)
}

// startCacheWith starts a read model with opts over objs, which must include
// the CA Issuer team-a/ca, and waits until that issuer is Ready.
func startCacheWith(t *testing.T, opts issuers.Options, objs ...runtime.Object) (*issuers.Cache, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	ca := testpki.MustCA(testpki.CAOptions{CommonName: "team CA"})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ca", ResourceVersion: "1"},
		Data: map[string][]byte{"tls.crt": ca.CertPEM(), "tls.key": ca.KeyPEM()}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		issuers.IssuerGVR: "IssuerList", issuers.ClusterIssuerGVR: "ClusterIssuerList"}, objs...)
	c := issuers.New(dyn, kubefake.NewClientset(secret), opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) {
			s, ok := c.Get(issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team-a", Name: "ca"})
			return c.HasSynced() && ok && s.Ready, nil
		}); err != nil {
		s, ok := c.Get(issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team-a", Name: "ca"})
		t.Fatalf("read model never became ready: synced=%v state=%+v %v", c.HasSynced(), s, ok)
	}
	return c, dyn
}

func fixtures() []runtime.Object {
	return []runtime.Object{
		issuer("Issuer", "team-a", "ca", map[string]interface{}{"tier": "prod"}, map[string]interface{}{"ca": map[string]interface{}{"secretName": "ca"}}),
		issuer("Issuer", "team-a", "missing", nil, map[string]interface{}{"ca": map[string]interface{}{"secretName": "nope"}}),
		issuer("Issuer", "team-b", "vault", map[string]interface{}{"tier": "dev"}, map[string]interface{}{"vault": map[string]interface{}{}}),
		issuer("ClusterIssuer", "", "selfsigned", nil, map[string]interface{}{"selfSigned": map[string]interface{}{}}),
	}
}

func nsCtx(ns string) context.Context {
	return genericapirequest.WithNamespace(context.Background(), ns)
}

func TestGetComputesSignerFromIssuer(t *testing.T) {
	c, _ := startCache(t, fixtures()...)
	r := signer.NewREST(c)
	obj, err := r.Get(nsCtx("team-a"), "ca", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := obj.(*certmanager.Signer)
	if s.Spec.SignerName != "issuers.cert-manager.io/team-a.ca" || s.Spec.Type != certmanager.SignerTypeCA ||
		s.Spec.IssuerRef != (certmanager.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "ca"}) {
		t.Errorf("spec = %+v", s.Spec)
	}
	if s.UID != "uid-ca" || s.Labels["tier"] != "prod" || s.ResourceVersion == "" {
		t.Errorf("metadata = %+v", s.ObjectMeta)
	}
	if len(s.Status.Conditions) != 2 || s.Status.Conditions[0].Type != certmanager.SignerConditionReady || s.Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("conditions = %+v", s.Status.Conditions)
	}
	// The CA is valid for a year: longer than a 90-day certificate.
	if c := s.Status.Conditions[len(s.Status.Conditions)-1]; c.Type != certmanager.SignerConditionShortLivedCA || c.Status != metav1.ConditionFalse ||
		c.Reason != issuers.ReasonCAOutlivesDefaultDuration || c.LastTransitionTime.IsZero() {
		t.Errorf("ShortLivedCA condition = %+v", c)
	}
	if s.Status.CA == nil || s.Status.CA.Subject != "CN=team CA,O=signet tests" || s.Status.CA.KeyAlgorithm != "ECDSA P-256" {
		t.Errorf("status.ca = %+v", s.Status.CA)
	}

	if _, err := r.Get(nsCtx("team-b"), "ca", &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get in the wrong namespace: err = %v, want NotFound", err)
	}
	if _, err := clustersigner.NewREST(c).Get(context.Background(), "ca", &metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("clustersigner for an Issuer: err = %v, want NotFound", err)
	}
	obj, err = r.Get(nsCtx("team-a"), "missing", &metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if conds := obj.(*certmanager.Signer).Status.Conditions; len(conds) != 1 || conds[0].Status != metav1.ConditionFalse || conds[0].Reason != issuers.ReasonSecretNotFound {
		t.Errorf("missing Secret: conditions = %+v, want Ready=False only (no CA to judge)", conds)
	}
}

func TestListSelectors(t *testing.T) {
	c, _ := startCache(t, fixtures()...)
	r := signer.NewREST(c)
	tests := []struct {
		desc string
		ctx  context.Context
		opts *metainternalversion.ListOptions
		want []string
	}{
		{"all namespaces", context.Background(), nil, []string{"ca", "missing", "vault"}},
		{"one namespace", nsCtx("team-b"), nil, []string{"vault"}},
		{"label", context.Background(), &metainternalversion.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{"tier": "prod"})}, []string{"ca"}},
		{"field spec.type", context.Background(), &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.type", "Vault")}, []string{"vault"}},
		{"field metadata.name", context.Background(), &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "missing")}, []string{"missing"}},
	}
	for _, tt := range tests {
		obj, err := r.List(tt.ctx, tt.opts)
		if err != nil {
			t.Fatalf("%s: %v", tt.desc, err)
		}
		list := obj.(*certmanager.SignerList)
		var got []string
		for _, s := range list.Items {
			got = append(got, s.Name)
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.desc, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %v, want %v", tt.desc, got, tt.want)
			}
		}
		if list.ResourceVersion == "" {
			t.Errorf("%s: list has no resourceVersion", tt.desc)
		}
	}
	_, err := r.List(context.Background(), &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("status.ca", "x")})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("unsupported field selector: err = %v, want BadRequest", err)
	}
}

func TestWatch(t *testing.T) {
	c, dyn := startCache(t, fixtures()...)
	r := signer.NewREST(c)
	list, err := r.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rv := list.(*certmanager.SignerList).ResourceVersion

	// A watch selecting tier=prod from the list's version.
	w, err := r.Watch(context.Background(), &metainternalversion.ListOptions{ResourceVersion: rv, LabelSelector: labels.SelectorFromSet(labels.Set{"tier": "prod"})})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() watch.Event {
		t.Helper()
		select {
		case e := <-w.ResultChan():
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no watch event")
		}
		return watch.Event{}
	}
	ctx := context.Background()
	// A new issuer with tier=prod is Added; relabelling it away is Deleted for this watcher.
	u := issuer("Issuer", "team-b", "new", map[string]interface{}{"tier": "prod"}, map[string]interface{}{"selfSigned": map[string]interface{}{}})
	if _, err := dyn.Resource(issuers.IssuerGVR).Namespace("team-b").Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Type != watch.Added || e.Object.(*certmanager.Signer).Name != "new" {
		t.Fatalf("event = %s %v, want ADDED new", e.Type, e.Object)
	}
	u.SetLabels(map[string]string{"tier": "dev"})
	if _, err := dyn.Resource(issuers.IssuerGVR).Namespace("team-b").Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Type != watch.Deleted || e.Object.(*certmanager.Signer).Name != "new" {
		t.Fatalf("event = %s, want DELETED new (left the selector)", e.Type)
	}

	// Resource versions from another process (or long evicted) are 410 Gone.
	if _, err := r.Watch(ctx, &metainternalversion.ListOptions{ResourceVersion: "1"}); !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Errorf("watch from rv 1: err = %v, want 410", err)
	}
	if _, err := r.Watch(ctx, &metainternalversion.ListOptions{ResourceVersion: "abc"}); !apierrors.IsBadRequest(err) {
		t.Errorf("watch from rv abc: err = %v, want 400", err)
	}

	// sendInitialEvents: every current object, then the bookmark that ends them.
	wl, err := clustersigner.NewREST(c).Watch(ctx, &metainternalversion.ListOptions{SendInitialEvents: ptr.To(true), AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Stop()
	if e := <-wl.ResultChan(); e.Type != watch.Added || e.Object.(*certmanager.ClusterSigner).Name != "selfsigned" {
		t.Fatalf("first event = %s %v", e.Type, e.Object)
	}
	e := <-wl.ResultChan()
	if e.Type != watch.Bookmark || e.Object.(*certmanager.ClusterSigner).Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("second event = %s %v, want the initial-events bookmark", e.Type, e.Object)
	}
}

func TestSignersAreInTheCertManagerCategory(t *testing.T) {
	c, _ := startCache(t, fixtures()...)
	for name, r := range map[string]rest.CategoriesProvider{"signers": signer.NewREST(c), "clustersigners": clustersigner.NewREST(c)} {
		if got := r.Categories(); !slices.Equal(got, []string{"cert-manager"}) {
			t.Errorf("%s categories = %v, want [cert-manager]", name, got)
		}
	}
}

func TestTable(t *testing.T) {
	c, _ := startCache(t, fixtures()...)
	r := signer.NewREST(c)
	list, err := r.List(nsCtx("team-a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := r.ConvertToTable(context.Background(), list, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, col := range tbl.ColumnDefinitions {
		if col.Priority == 0 {
			names = append(names, col.Name)
		}
	}
	if want := []string{"Name", "Type", "Ready", "Signer Name", "CA Expires", "Age"}; len(names) != len(want) {
		t.Fatalf("columns = %v, want %v", names, want)
	}
	if len(tbl.Rows) != 2 {
		t.Fatalf("rows = %d, want 2", len(tbl.Rows))
	}
	ca, missing := tbl.Rows[0].Cells, tbl.Rows[1].Cells
	if ca[0] != "ca" || ca[1] != "CA" || ca[2] != "True" || ca[3] != "issuers.cert-manager.io/team-a.ca" || ca[4] == "<none>" {
		t.Errorf("ca row = %v", ca)
	}
	var wide []string
	for _, col := range tbl.ColumnDefinitions {
		if col.Priority == 1 {
			wide = append(wide, col.Name)
		}
	}
	if want := []string{"Short-Lived CA", "Reason", "Message"}; !slices.Equal(wide, want) {
		t.Errorf("-o wide columns = %v, want %v", wide, want)
	}
	if ca[6] != "False" || ca[7] != issuers.ReasonReady {
		t.Errorf("ca row = %v, want Short-Lived CA False (a year-long CA), reason Ready", ca)
	}
	if missing[2] != "False" || missing[4] != "<none>" || missing[6] != "<none>" || missing[7] != issuers.ReasonSecretNotFound {
		t.Errorf("missing row = %v", missing)
	}
	if _, err := r.ConvertToTable(context.Background(), &certmanager.SignerList{}, &metav1.TableOptions{NoHeaders: true}); err != nil {
		t.Errorf("empty list: %v", err)
	}
}
