package issuers

import (
	"context"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"
)

func secretMetadata(ns, name, rv string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv},
	}
}

// feedState is what the reader knows from the feed about key.
func feedState(r *secretReader, key SecretKey) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[key]
	switch {
	case e == nil:
		return "untracked"
	case !e.feedKnown:
		return "unknown"
	case !e.feedExists:
		return "gone"
	}
	return "at " + e.feedRV
}

func TestSecretFeedThroughTheMetadataClient(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	md := metadatafake.NewSimpleMetadataClient(scheme, secretMetadata("team", "key", "5"), secretMetadata("team", "unrelated", "6"))
	r := newSecretReader(nil, func(SecretKey) {})
	key, later, unrelated := SecretKey{"team", "key"}, SecretKey{"team", "later"}, SecretKey{"team", "unrelated"}
	r.hold("csr", key)
	r.hold("csr", later)
	notes := make(chan SecretKey, 10)
	r.addListener(func(k SecretKey, _ []string) { notes <- k })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go newSecretFeed(md, nil, r).RunWithContext(ctx)
	select {
	case <-r.feedListed:
	case <-time.After(10 * time.Second):
		t.Fatal("the feed never listed")
	}
	for k, want := range map[SecretKey]string{key: "at 5", later: "gone", unrelated: "untracked"} {
		if got := feedState(r, k); got != want {
			t.Errorf("after the list, %s is %s, want %s", k, got, want)
		}
	}
	// The list tells holders what it found, once.
	got := map[SecretKey]bool{}
	for range 2 {
		got[<-notes] = true
	}
	if !got[key] || !got[later] {
		t.Errorf("notified of %v after the list", got)
	}

	secrets := md.Resource(secretsGVR).Namespace("team").(metadatafake.MetadataClient)
	if _, err := secrets.CreateFake(secretMetadata("team", "later", "7"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if k := <-notes; k != later {
		t.Errorf("notified of %s, want %s", k, later)
	}
	if got := feedState(r, later); got != "at 7" {
		t.Errorf("created: %s", got)
	}
	if err := md.Resource(secretsGVR).Namespace("team").Delete(ctx, "key", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if k := <-notes; k != key {
		t.Errorf("notified of %s, want %s", k, key)
	}
	if _, err := secrets.UpdateFake(secretMetadata("team", "unrelated", "8"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-notes:
		t.Errorf("notified of %s", k)
	case <-time.After(100 * time.Millisecond):
	}
	if got := feedState(r, unrelated); got != "untracked" {
		t.Errorf("a Secret nobody references is %s", got)
	}
	verbs := map[string]int{}
	for _, a := range md.Actions() {
		verbs[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	if verbs["list secrets"] != 1 || verbs["watch secrets"] != 1 {
		t.Errorf("requests %v, want one list and one watch of secrets", verbs)
	}
}

func TestSecretFeedKeepsOnlyNamesAndVersions(t *testing.T) {
	full := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ca", ResourceVersion: "9", UID: "u",
			Labels: map[string]string{"a": "b"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Data: map[string][]byte{"tls.key": []byte("secret")},
	}
	got, err := secretFeed{}.Transformer()(full)
	want := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ca", ResourceVersion: "9"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("transform: %#v %v", got, err)
	}
	if got, _ := secretVersionOnly("not an object"); got != "not an object" {
		t.Errorf("a non-object is passed through: %v", got)
	}
	f := secretFeed{reader: newSecretReader(nil, nil)}
	if err := f.Resync(); err != nil {
		t.Error(err)
	}
	if err := f.Add("not an object"); err == nil {
		t.Error("Add of a non-object succeeded")
	}
	if err := f.Replace([]interface{}{"not an object"}, "1"); err == nil {
		t.Error("Replace with a non-object succeeded")
	}
}

func TestSlimIssuerDropsWhatSignetNeverReads(t *testing.T) {
	u := issuerFixture("team", "a", map[string]interface{}{"selfSigned": map[string]interface{}{}})
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl"}})
	u.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: "{...}", "keep": "me"})
	out, err := slimIssuer(u)
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*unstructured.Unstructured)
	if slim.GetManagedFields() != nil || !reflect.DeepEqual(slim.GetAnnotations(), map[string]string{"keep": "me"}) {
		t.Errorf("slimmed issuer: managed fields %v, annotations %v", slim.GetManagedFields(), slim.GetAnnotations())
	}
	if got, _ := slimIssuer("other"); got != "other" {
		t.Errorf("a non-issuer is passed through: %v", got)
	}
}
