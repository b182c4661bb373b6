package issuance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/signet-dev/signet/internal/issuancetest"
	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// An edge that makes its own template (pod certificates) and always checks
// reference: the pipeline's checks come first, the template replaces the
// PKCS#10 request and the policy, and the backend signs it.
func TestPipelineWithEdgeTemplate(t *testing.T) {
	var (
		ca        = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
		clusterCA = issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "cluster-ca"}
		noSecret  = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "no-secret"}
	)
	root := testpki.MustCA(testpki.CAOptions{CommonName: "template root"})
	source := issuancetest.NewSource(
		issuancetest.CAState(t, ca, root),
		issuancetest.CAState(t, clusterCA, root),
		issuancetest.NotReady(noSecret, issuers.TypeCA, issuers.ReasonSecretNotFound, "CA Secret ns/s not found"),
	)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	pod := &issuance.Requester{Username: "system:serviceaccount:ns:web"}
	edgeTemplate := &signers.Template{Duration: time.Hour}
	issued := &issuance.Issued{CertificatePEM: []byte("cert")}

	tests := []struct {
		desc        string
		signer      issuers.Ref
		allowed     bool
		stop        issuance.Outcome
		templateErr error

		wantSARs     int
		wantTemplate bool
		wantBackend  bool
		wantReason   string // of a Failed or Waiting outcome
		wantErr      bool
	}{
		{desc: "a ClusterIssuer is checked whatever the policy", signer: clusterCA,
			wantSARs: 1, wantReason: wire.ReasonDeniedReference},
		{desc: "allowed: the edge's template is signed", signer: clusterCA, allowed: true,
			wantSARs: 1, wantTemplate: true, wantBackend: true},
		{desc: "not ready: no template is made", signer: noSecret, allowed: true,
			wantSARs: 1, wantReason: wire.ReasonSecretMissing},
		{desc: "the template's outcome ends the request", signer: ca, allowed: true,
			stop:     &issuance.Waiting{For: issuance.WaitIssuerNotReady, Reason: "CAExpiresTooSoon", Message: "soon"},
			wantSARs: 1, wantTemplate: true, wantReason: "CAExpiresTooSoon"},
		{desc: "the template's error is the pipeline's", signer: ca, allowed: true, templateErr: errors.New("no randomness"),
			wantSARs: 1, wantTemplate: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			refs := &references{allowed: map[issuers.Ref]bool{tt.signer: tt.allowed}}
			backend := &recordingBackend{outcome: issued}
			p := issuance.New(source, map[issuers.Type]issuance.Backend{issuers.TypeCA: backend}, issuance.Policy{}, refs, clocktesting.NewFakePassiveClock(now))
			var gotIssuer *issuers.State
			var gotNow time.Time
			calls := 0
			req := &issuance.Request{
				Signer: tt.signer, Requester: pod, AlwaysCheckReference: true,
				// Unused with a template: it must not fail the request.
				Malformed: &issuance.Failed{Reason: wire.ReasonErrorParseDuration, Message: "ignored"},
				Template: func(issuer *issuers.State, at time.Time) (*signers.Template, issuance.Outcome, error) {
					calls++
					gotIssuer, gotNow = issuer, at
					if tt.stop != nil || tt.templateErr != nil {
						return nil, tt.stop, tt.templateErr
					}
					return edgeTemplate, nil, nil
				},
			}
			out, err := p.Issue(context.Background(), req)
			if refs.calls != tt.wantSARs {
				t.Errorf("%d reference checks, want %d", refs.calls, tt.wantSARs)
			}
			if (calls > 0) != tt.wantTemplate {
				t.Errorf("template made %d times, want made: %v", calls, tt.wantTemplate)
			}
			if calls > 0 && (gotIssuer == nil || gotIssuer.Issuer.Ref != tt.signer || !gotIssuer.Ready || !gotNow.Equal(now)) {
				t.Errorf("template made with issuer %+v at %s", gotIssuer, gotNow)
			}
			if (backend.calls > 0) != tt.wantBackend {
				t.Errorf("backend called %d times, want called: %v", backend.calls, tt.wantBackend)
			}
			if tt.wantBackend && backend.tmpl != edgeTemplate {
				t.Error("the backend did not get the edge's template")
			}
			switch {
			case tt.wantErr:
				if err == nil {
					t.Fatalf("Issue = %#v, want an error", out)
				}
			case err != nil:
				t.Fatalf("Issue: %v", err)
			case tt.wantReason == "":
				if out != issued {
					t.Fatalf("outcome %#v, want the backend's", out)
				}
			default:
				var reason string
				switch o := out.(type) {
				case *issuance.Failed:
					reason = o.Reason
				case *issuance.Waiting:
					reason = o.Reason
				}
				if reason != tt.wantReason {
					t.Fatalf("outcome %#v, want reason %s", out, tt.wantReason)
				}
			}
		})
	}
}
