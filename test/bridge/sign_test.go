package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/test/framework/fakecertmanager"
)

// The sign subresource with issuers cert-manager signs with: Vault answers
// with cert-manager's certificate (and its CertificateRequest goes once
// answered); an issuer slower than --sign-timeout gets 504 naming the
// CertificateRequest, which stays; ACME is refused with 400.
func TestSignSubresourceThroughCertificateRequests(t *testing.T) {
	createNamespace(t, "sign")
	createReadyIssuer(t, cmIssuer, "sign", "vault", vaultSpec(), nil)
	createReadyIssuer(t, cmIssuer, "sign", "slow", vaultSpec(), map[string]string{fakecertmanager.AnnotationSignDelay: "1h"})
	createReadyIssuer(t, cmIssuer, "sign", "acme", acmeSpec(), nil)
	createReadyIssuer(t, testIssuer, "sign", "ext", map[string]interface{}{}, nil)
	for _, name := range []string{"vault", "slow"} {
		waitSignerReady(t, "sign", name, v1alpha1.SignerTypeVault)
	}
	waitSignerReady(t, "sign", "acme", v1alpha1.SignerTypeACME)
	waitSignerReady(t, "sign", "testissuers.example.com.ext", v1alpha1.SignerTypeExternal)
	signers := env.signer.CertManagerV1alpha1().Signers("sign")
	crs := env.dyn.Resource(certificaterequest.GVR).Namespace("sign")
	request := func(t *testing.T) (*v1alpha1.SigningRequest, func(*v1alpha1.SigningRequest)) {
		req, key := newRequest(t, "sync.example.com")
		sr := &v1alpha1.SigningRequest{Spec: v1alpha1.SigningRequestSpec{Request: req, Usages: []string{"digital signature", "server auth"}}}
		return sr, func(out *v1alpha1.SigningRequest) { chainOf(t, out.Status.Certificate, key) }
	}

	t.Run("VaultAnswers", func(t *testing.T) {
		sr, check := request(t)
		out, err := signers.Sign(context.Background(), "vault", sr, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check(out)
		if !strings.Contains(string(out.Status.CA), "BEGIN CERTIFICATE") {
			t.Errorf("status.ca %q, want cert-manager's CA", out.Status.CA)
		}
		eventually(t, "the answered request's CertificateRequest to go", func() bool {
			list, err := crs.List(context.Background(), metav1.ListOptions{})
			for _, cr := range list.Items {
				if ref, _, _ := unstructured.NestedString(cr.Object, "spec", "issuerRef", "name"); ref == "vault" {
					return false
				}
			}
			return err == nil
		})
	})

	t.Run("ExternalAnswers", func(t *testing.T) {
		sr, check := request(t)
		out, err := signers.Sign(context.Background(), "testissuers.example.com.ext", sr, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check(out)
	})

	t.Run("SlowIssuerTimesOut", func(t *testing.T) {
		sr, _ := request(t)
		start := time.Now()
		_, err := signers.Sign(context.Background(), "slow", sr, metav1.CreateOptions{})
		took := time.Since(start)
		if !apierrors.IsTimeout(err) {
			t.Fatalf("%v (%T), want 504", err, err)
		}
		if took < signTimeout || took > signTimeout+10*time.Second {
			t.Errorf("answered after %s, want about --sign-timeout %s", took, signTimeout)
		}
		list, lerr := crs.List(context.Background(), metav1.ListOptions{})
		if lerr != nil {
			t.Fatal(lerr)
		}
		var named bool
		for _, cr := range list.Items {
			if ref, _, _ := unstructured.NestedString(cr.Object, "spec", "issuerRef", "name"); ref == "slow" {
				named = strings.Contains(err.Error(), "CertificateRequest sign/"+cr.GetName())
			}
		}
		if !named {
			t.Errorf("504 %q does not name the CertificateRequest that stays", err)
		}
	})

	t.Run("ACMERefused", func(t *testing.T) {
		sr, _ := request(t)
		_, err := signers.Sign(context.Background(), "acme", sr, metav1.CreateOptions{})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "AsynchronousIssuer") || !strings.Contains(err.Error(), "CertificateSigningRequest") {
			t.Fatalf("%v, want 400 AsynchronousIssuer pointing at CSRs", err)
		}
		list, lerr := crs.List(context.Background(), metav1.ListOptions{})
		for _, cr := range list.Items {
			if ref, _, _ := unstructured.NestedString(cr.Object, "spec", "issuerRef", "name"); ref == "acme" {
				t.Errorf("CertificateRequest %s made for a refused request", cr.GetName())
			}
		}
		if lerr != nil {
			t.Fatal(lerr)
		}
	})
}
