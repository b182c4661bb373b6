package issuers

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
)

func TestCAExpiryRule(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		desc          string
		caEndsIn      time.Duration
		policy        signers.Policy
		wantShort     bool
		wantInMessage string
	}{
		{desc: "outlives the 90-day default", caEndsIn: 91 * day, wantInMessage: "after a certificate of the default duration 2160h0m0s"},
		{desc: "ends with a default certificate: not short", caEndsIn: 90 * day, wantInMessage: "after"},
		{desc: "ends a second before a default certificate", caEndsIn: 90*day - time.Second, wantShort: true, wantInMessage: "cert-manager's rule"},
		{desc: "expires in 2 minutes", caEndsIn: 2 * time.Minute, wantShort: true, wantInMessage: "stop verifying when it expires"},
		{desc: "already expired", caEndsIn: -time.Hour, wantShort: true},
		{desc: "max-duration under the CA's life: not short", caEndsIn: 30 * day, policy: signers.Policy{MaxDuration: 7 * day}, wantInMessage: "default duration 168h0m0s"},
		{desc: "max-duration over the CA's life", caEndsIn: 5 * day, policy: signers.Policy{MaxDuration: 7 * day}, wantShort: true, wantInMessage: "default duration 168h0m0s"},
		{desc: "max-duration over 90 days leaves the default at 90 days", caEndsIn: 100 * day, policy: signers.Policy{MaxDuration: 200 * day}, wantInMessage: "2160h0m0s"},
		{desc: "cap-to-ca-expiry says certificates are shortened", caEndsIn: time.Hour, policy: signers.Policy{CapToCAExpiry: true}, wantShort: true, wantInMessage: "shortened to end with the CA (--cap-to-ca-expiry)"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ca := testpki.MustCA(testpki.CAOptions{CommonName: "rule CA", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(tt.caEndsIn)})
			got := caExpiry(ca.Cert, tt.policy, now)
			wantReason := ReasonCAOutlivesDefaultDuration
			if tt.wantShort {
				wantReason = ReasonCAExpiresWithinDefaultDuration
			}
			if got.ShortLived != tt.wantShort || got.Reason != wantReason {
				t.Errorf("ShortLived=%v reason=%s, want %v %s", got.ShortLived, got.Reason, tt.wantShort, wantReason)
			}
			if !strings.Contains(got.Message, "CN=rule CA") || !strings.Contains(got.Message, ca.Cert.NotAfter.UTC().Format(time.RFC3339)) ||
				!strings.Contains(got.Message, tt.wantInMessage) {
				t.Errorf("message %q: want the CA, its NotAfter and %q", got.Message, tt.wantInMessage)
			}
		})
	}
}

// TestCacheReportsACAThatBecomesShortLived: nothing changes but the clock,
// and the State still turns ShortLived (with a new resource version, so
// watchers see it) once the CA ends within the default duration.
func TestCacheReportsACAThatBecomesShortLived(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := clocktesting.NewFakeClock(start)
	ca := testpki.MustCA(testpki.CAOptions{CommonName: "aging CA", NotBefore: start.Add(-time.Hour), NotAfter: start.Add(signers.DefaultDuration + time.Hour)})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ca", ResourceVersion: "1"},
		Data: map[string][]byte{signers.TLSCertKey: ca.CertPEM(), signers.TLSKeyKey: ca.KeyPEM()}}
	iss := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
		"metadata": map[string]interface{}{"name": "ca", "namespace": "team", "uid": "u1"},
		"spec":     map[string]interface{}{"ca": map[string]interface{}{"secretName": "ca"}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		IssuerGVR: "IssuerList", ClusterIssuerGVR: "ClusterIssuerList"}, iss)
	c := New(dyn, kubefake.NewClientset(secret), Options{Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	ref := Ref{Kind: KindIssuer, Namespace: "team", Name: "ca"}
	state := func(cond func(*State) bool) *State {
		t.Helper()
		var s *State
		if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			var ok bool
			s, ok = c.Get(ref)
			return ok && cond(s), nil
		}); err != nil {
			t.Fatalf("state never as wanted; last %+v", s)
		}
		return s
	}
	before := state(func(s *State) bool { return s.Ready && s.CAExpiry != nil })
	if before.CAExpiry.ShortLived || before.CAExpiry.Reason != ReasonCAOutlivesDefaultDuration || !before.CAExpiry.LastTransitionTime.Equal(start) {
		t.Fatalf("a CA that outlives the default duration: %+v", before.CAExpiry)
	}

	// Two hours on, the CA ends 1h short of a 90-day certificate. The
	// validity ticker runs every 15 s of the (fake) clock.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return clk.HasWaiters(), nil
	}); err != nil {
		t.Fatal("the validity ticker never started")
	}
	later := start.Add(2 * time.Hour)
	clk.SetTime(later)
	after := state(func(s *State) bool { return s.CAExpiry != nil && s.CAExpiry.ShortLived })
	if after.CAExpiry.Reason != ReasonCAExpiresWithinDefaultDuration || !after.CAExpiry.LastTransitionTime.Equal(later) {
		t.Errorf("after two hours: %+v, want ShortLived since %s", after.CAExpiry, later)
	}
	if !after.Ready || !after.LastTransitionTime.Equal(before.LastTransitionTime) {
		t.Errorf("Ready=%v since %s: the Ready condition should not have changed (was since %s)", after.Ready, after.LastTransitionTime, before.LastTransitionTime)
	}
	if after.ResourceVersion <= before.ResourceVersion {
		t.Errorf("resource version %d not after %d: watchers would miss the change", after.ResourceVersion, before.ResourceVersion)
	}
}
