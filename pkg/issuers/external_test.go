package issuers

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

var (
	testIssuers        = ExternalResource{GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1alpha1", Resource: "testissuers"}, Kind: KindIssuer}
	testClusterIssuers = ExternalResource{GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1alpha1", Resource: "testclusterissuers"}, Kind: KindClusterIssuer}
)

func externalObject(kind, ns, name string, ready string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "example.com/v1alpha1", "kind": kind,
		"metadata": map[string]interface{}{"name": name, "uid": "uid-" + name},
		"spec":     map[string]interface{}{"anything": "the external issuer's business"},
	}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	if ready != "" {
		u.Object["status"] = map[string]interface{}{"conditions": []interface{}{
			map[string]interface{}{"type": "Ready", "status": ready, "reason": "Checked", "message": "checked by its controller"}}}
	}
	return u
}

func TestFromExternal(t *testing.T) {
	iss := FromExternal(externalObject("TestIssuer", "team", "ext", "True"), testIssuers)
	want := Ref{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "team", Name: "ext"}
	if iss.Ref != want || iss.Type != TypeExternal || iss.ObjectKind != "TestIssuer" || iss.StatusReady == nil || iss.StatusReady.Status != "True" {
		t.Errorf("FromExternal = %+v", iss)
	}
	if got := iss.SignerName(); got != "testissuers.example.com/team.ext" {
		t.Errorf("signer name %q", got)
	}
	cluster := FromExternal(externalObject("TestClusterIssuer", "", "ext", ""), testClusterIssuers)
	if cluster.Ref != (Ref{Kind: KindClusterIssuer, External: "testclusterissuers.example.com", Name: "ext"}) || cluster.StatusReady != nil {
		t.Errorf("FromExternal = %+v", cluster)
	}
	if got := cluster.SignerName(); got != "testclusterissuers.example.com/ext" {
		t.Errorf("signer name %q", got)
	}
}

// External issuers are read like Issuers and ClusterIssuers, listed beside
// them, ready when their controller says so, and gone when deleted; an
// Issuer of the same name is another signer.
func TestCacheServesExternalIssuers(t *testing.T) {
	ext := externalObject("TestIssuer", "team", "same", "")
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		IssuerGVR: "IssuerList", ClusterIssuerGVR: "ClusterIssuerList", testIssuers.GVR: "TestIssuerList", testClusterIssuers.GVR: "TestClusterIssuerList"},
		issuerFixture("team", "same", map[string]interface{}{"selfSigned": map[string]interface{}{}}),
		ext.DeepCopy(), externalObject("TestClusterIssuer", "", "cluster-ext", "True"))
	c := New(dyn, kubefake.NewClientset(), Options{Clock: clocktesting.NewFakeClock(fixtureNow), HistorySize: 100,
		External: []ExternalResource{testIssuers, testClusterIssuers}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	poll("the cache to sync", c.HasSynced)

	extRef := Ref{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "team", Name: "same"}
	states, _ := c.List(KindIssuer, "team")
	if len(states) != 2 {
		t.Fatalf("listed %d signers in team, want the Issuer and the TestIssuer", len(states))
	}
	s, ok := c.Get(extRef)
	if !ok || s.Ready || s.Reason != ReasonPending || !strings.Contains(s.Message, "its controller") {
		t.Errorf("TestIssuer without a Ready condition: %+v", s)
	}
	if s, ok := c.Get(Ref{Kind: KindClusterIssuer, External: "testclusterissuers.example.com", Name: "cluster-ext"}); !ok || !s.Ready {
		t.Errorf("TestClusterIssuer reported Ready: %+v", s)
	}

	ready := externalObject("TestIssuer", "team", "same", "True")
	if _, err := dyn.Resource(testIssuers.GVR).Namespace("team").UpdateStatus(ctx, ready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the TestIssuer to be Ready", func() bool { s, ok := c.Get(extRef); return ok && s.Ready })
	if err := dyn.Resource(testIssuers.GVR).Namespace("team").Delete(ctx, "same", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the TestIssuer to go", func() bool { _, ok := c.Get(extRef); return !ok })
	if _, ok := c.Get(Ref{Kind: KindIssuer, Namespace: "team", Name: "same"}); !ok {
		t.Error("deleting the TestIssuer took the Issuer of the same name with it")
	}
}
