package ca_test

import (
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/issuancetest"
	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/ca"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

var ref = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}

func template(t *testing.T, now time.Time) *signers.Template {
	t.Helper()
	tmpl, err := signers.BuildTemplate(signers.Input{
		Request: issuancetest.CSR(t, issuancetest.Key(t), "app", "app.example.com"),
		Usages:  []string{"digital signature", "server auth"}, Duration: time.Hour,
	}, signers.Policy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestIssueSignsWithTheIssuersCA(t *testing.T) {
	now := time.Now()
	root := testpki.MustCA(testpki.CAOptions{CommonName: "backend root"})
	state := issuancetest.CAState(t, ref, root)
	state.Issuer.CA.CRLDistributionPoints = []string{"http://crl.example.com/ca.crl"}
	state.Issuer.CA.OCSPServers = []string{"http://ocsp.example.com"}
	state.Issuer.CA.IssuingCertificateURLs = []string{"http://example.com/ca.crt"}

	out, err := ca.New(issuance.Deps{}).Issue(context.Background(), &issuance.Request{Signer: ref}, template(t, now), state, now)
	if err != nil {
		t.Fatal(err)
	}
	issued, ok := out.(*issuance.Issued)
	if !ok {
		t.Fatalf("outcome %#v, want Issued", out)
	}
	leaf := issuancetest.Leaf(t, issued.CertificatePEM)
	if err := leaf.CheckSignatureFrom(root.Cert); err != nil {
		t.Errorf("not signed by the issuer's CA: %v", err)
	}
	if string(issued.CAPEM) != string(root.CertPEM()) {
		t.Errorf("CAPEM is not the issuer's root")
	}
	if !issued.NotAfter.Equal(leaf.NotAfter) || !issued.NotBefore.Equal(leaf.NotBefore) {
		t.Errorf("Issued says %s to %s, the certificate %s to %s", issued.NotBefore, issued.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if !slices.Equal(leaf.CRLDistributionPoints, state.Issuer.CA.CRLDistributionPoints) || !slices.Equal(leaf.OCSPServer, state.Issuer.CA.OCSPServers) ||
		!slices.Equal(leaf.IssuingCertificateURL, state.Issuer.CA.IssuingCertificateURLs) {
		t.Errorf("spec.ca URLs not copied: %v %v %v", leaf.CRLDistributionPoints, leaf.OCSPServer, leaf.IssuingCertificateURL)
	}
	if leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("usages %v", leaf.ExtKeyUsage)
	}
}

// A CA that expired since the read model judged it ready: the request waits
// for a rotated CA, retried with backoff, instead of failing.
func TestIssueWaitsForAnExpiredCA(t *testing.T) {
	now := time.Now()
	root := testpki.MustCA(testpki.CAOptions{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
	out, err := ca.New(issuance.Deps{}).Issue(context.Background(), &issuance.Request{Signer: ref}, template(t, now), issuancetest.CAState(t, ref, root), now)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := out.(*issuance.Waiting)
	if !ok || w.For != issuance.WaitIssuerNotReady || w.Reason != wire.ReasonIssuerNotReady || !w.Backoff {
		t.Fatalf("outcome %#v, want Waiting for the issuer, with backoff", out)
	}
}

func TestIssueFailsWhenTheKeyCannotSign(t *testing.T) {
	now := time.Now()
	root := testpki.MustCA(testpki.CAOptions{})
	state := issuancetest.CAState(t, ref, root)
	// A key that is not the CA certificate's: crypto/x509 refuses to sign.
	state.CA.Key = testpki.MustCA(testpki.CAOptions{}).Key
	out, err := ca.New(issuance.Deps{}).Issue(context.Background(), &issuance.Request{Signer: ref}, template(t, now), state, now)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := out.(*issuance.Failed); !ok || f.Reason != wire.ReasonSigningError {
		t.Fatalf("outcome %T %+v, want Failed %s", out, out, wire.ReasonSigningError)
	}
}

func TestIssueWithoutAParsedCAIsAnError(t *testing.T) {
	now := time.Now()
	state := issuancetest.CAState(t, ref, testpki.MustCA(testpki.CAOptions{}))
	state.CA = nil
	if out, err := ca.New(issuance.Deps{}).Issue(context.Background(), &issuance.Request{Signer: ref}, template(t, now), state, now); err == nil {
		t.Fatalf("outcome %#v, want an error", out)
	}
}
