package fakecertmanager_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/test/framework"
	"github.com/signet-dev/signet/test/framework/fakecertmanager"
)

// TestFakeCertManagerPlaysCertManagersPart runs the fake against
// cert-manager's real CRDs (from the module cache) on a real kube-apiserver,
// and checks each outcome as cert-manager's documentation describes it.
func TestFakeCertManagerPlaysCertManagersPart(t *testing.T) {
	cp := framework.StartControlPlaneT(t, framework.ControlPlaneOptions{})
	ctx := t.Context()
	if err := cp.InstallCertManagerCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	crdFile := filepath.Join(t.TempDir(), "testissuers.yaml")
	if err := os.WriteFile(crdFile, fakecertmanager.TestIssuerCRDs, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.InstallCRDFiles(ctx, crdFile); err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cp.AdminConfig)
	dyn := dynamic.NewForConfigOrDie(cp.AdminConfig)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fake"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fake, err := fakecertmanager.Start(ctx, cp.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}

	// A Vault Issuer as cert-manager's CRD validates it, and a TestIssuer.
	newIssuer := func(gvr schema.GroupVersionResource, kind, name, outcome string, spec map[string]interface{}) {
		t.Helper()
		u := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": gvr.GroupVersion().String(), "kind": kind,
			"metadata": map[string]interface{}{"name": name, "namespace": "fake",
				"annotations": map[string]interface{}{fakecertmanager.AnnotationOutcome: outcome}},
			"spec": spec,
		}}
		if _, err := dyn.Resource(gvr).Namespace("fake").Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s %s: %v", kind, name, err)
		}
		if err := fakecertmanager.SetIssuerReady(ctx, dyn, gvr, "fake", name, true, "VaultVerified", "Vault verified"); err != nil {
			t.Fatal(err)
		}
	}
	vault := map[string]interface{}{"vault": map[string]interface{}{
		"server": "https://vault.example.com", "path": "pki/sign/example",
		"auth": map[string]interface{}{"tokenSecretRef": map[string]interface{}{"name": "vault-token", "key": "token"}},
	}}
	for _, o := range []string{fakecertmanager.OutcomeSign, fakecertmanager.OutcomeFail, fakecertmanager.OutcomeInvalid, fakecertmanager.OutcomePending} {
		newIssuer(fakecertmanager.IssuerGVR, "Issuer", "vault-"+o, o, vault)
	}
	newIssuer(fakecertmanager.TestIssuerGVR, "TestIssuer", "external", fakecertmanager.OutcomeSign, map[string]interface{}{})

	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app"}, DNSNames: []string{"app.fake.svc"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	request := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	crs := dyn.Resource(fakecertmanager.CertificateRequestGVR).Namespace("fake")
	newCR := func(name, group, kind, issuer string) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
			"metadata": map[string]interface{}{"name": name},
			"spec": map[string]interface{}{"request": request, "duration": "1h0m0s", "usages": []interface{}{"digital signature", "server auth"},
				"issuerRef": map[string]interface{}{"name": issuer, "kind": kind, "group": group}},
		}}
		cr, err := crs.Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating CertificateRequest %s: %v", name, err)
		}
		return cr
	}
	setCondition := func(name, typ string) {
		t.Helper()
		cr, err := crs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(cr.Object, "status", "conditions")
		conds = append(conds, map[string]interface{}{"type": typ, "status": "True", "reason": "test", "message": "by the test",
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339)})
		if err := unstructured.SetNestedSlice(cr.Object, conds, "status", "conditions"); err != nil {
			t.Fatal(err)
		}
		if _, err := crs.UpdateStatus(ctx, cr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	readyOf := func(cr *unstructured.Unstructured) (status, reason string) {
		conds, _, _ := unstructured.NestedSlice(cr.Object, "status", "conditions")
		for _, c := range conds {
			m := c.(map[string]interface{})
			if m["type"] == "Ready" {
				return m["status"].(string), m["reason"].(string)
			}
		}
		return "", ""
	}
	waitReady := func(name, wantStatus, wantReason string) *unstructured.Unstructured {
		t.Helper()
		var cr *unstructured.Unstructured
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			cr, err = crs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			s, r := readyOf(cr)
			return s == wantStatus && r == wantReason, nil
		})
		if err != nil {
			s, r := readyOf(cr)
			t.Fatalf("CertificateRequest %s: Ready=%s/%s, want %s/%s: %v", name, s, r, wantStatus, wantReason, err)
		}
		return cr
	}

	t.Run("UnapprovedIsLeftAlone", func(t *testing.T) {
		newCR("unapproved", "cert-manager.io", "Issuer", "vault-sign")
		time.Sleep(time.Second)
		cr, err := crs.Get(ctx, "unapproved", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s, r := readyOf(cr); s != "" || fake.Issued("fake", "unapproved") != 0 {
			t.Fatalf("an unapproved CertificateRequest got Ready=%s/%s, issued %d", s, r, fake.Issued("fake", "unapproved"))
		}
	})

	t.Run("ApprovedIsSignedWithLeafAndChain", func(t *testing.T) {
		for _, c := range []struct{ name, group, kind, issuer string }{
			{"vault", "cert-manager.io", "Issuer", "vault-sign"},
			{"external", "example.com", "TestIssuer", "external"},
		} {
			newCR(c.name, c.group, c.kind, c.issuer)
			setCondition(c.name, "Approved")
			cr := waitReady(c.name, "True", "Issued")
			certB64, _, _ := unstructured.NestedString(cr.Object, "status", "certificate")
			caB64, _, _ := unstructured.NestedString(cr.Object, "status", "ca")
			certPEM, _ := base64.StdEncoding.DecodeString(certB64)
			caPEM, _ := base64.StdEncoding.DecodeString(caB64)
			var chain []*x509.Certificate
			for rest := certPEM; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				c, err := x509.ParseCertificate(b.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				chain = append(chain, c)
			}
			if len(chain) != 2 || chain[1].Subject.CommonName != "fakecertmanager intermediate" {
				t.Fatalf("%s: status.certificate holds %d certificates, want leaf + intermediate", c.name, len(chain))
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(caPEM)
			inter := x509.NewCertPool()
			inter.AddCert(chain[1])
			if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("%s: leaf does not verify against status.ca: %v", c.name, err)
			}
			if got := chain[0].NotAfter.Sub(chain[0].NotBefore); got != time.Hour {
				t.Errorf("%s: validity %s, want spec.duration 1h", c.name, got)
			}
			if n := fake.Issued("fake", c.name); n != 1 {
				t.Errorf("%s: issued %d times, want once", c.name, n)
			}
		}
	})

	t.Run("Outcomes", func(t *testing.T) {
		newCR("failed", "cert-manager.io", "Issuer", "vault-fail")
		setCondition("failed", "Approved")
		cr := waitReady("failed", "False", "Failed")
		if ft, _, _ := unstructured.NestedString(cr.Object, "status", "failureTime"); ft == "" {
			t.Error("Failed without status.failureTime")
		}

		newCR("invalid", "cert-manager.io", "Issuer", "vault-invalid")
		setCondition("invalid", "Approved")
		waitReady("invalid", "False", "Failed")

		newCR("pending", "cert-manager.io", "Issuer", "vault-pending")
		setCondition("pending", "Approved")
		waitReady("pending", "False", "Pending")

		newCR("denied", "cert-manager.io", "Issuer", "vault-sign")
		setCondition("denied", "Denied")
		waitReady("denied", "False", "Denied")

		newCR("no-issuer", "cert-manager.io", "Issuer", "absent")
		setCondition("no-issuer", "Approved")
		waitReady("no-issuer", "False", "IssuerNotFound")
	})
}
