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

// recordingBackend returns what it is told and remembers what it was given.
type recordingBackend struct {
	outcome issuance.Outcome
	err     error
	calls   int
	tmpl    *signers.Template
}

func (b *recordingBackend) Issue(_ context.Context, _ *issuance.Request, tmpl *signers.Template, _ *issuers.State, _ time.Time) (issuance.Outcome, error) {
	b.calls++
	b.tmpl = tmpl
	return b.outcome, b.err
}

// references answers reference checks from a table and counts them.
type references struct {
	allowed map[issuers.Ref]bool
	err     error
	calls   int
}

func (r *references) MayReference(_ context.Context, _ issuance.Requester, ref issuers.Ref) (bool, error) {
	r.calls++
	return r.allowed[ref], r.err
}

func dur(d time.Duration) *time.Duration { return &d }

func TestPipeline(t *testing.T) {
	var (
		ca          = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
		clusterCA   = issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "cluster-ca"}
		missing     = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "missing"}
		vault       = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "vault"}
		twoTypes    = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "two-types"}
		noSecret    = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "no-secret"}
		expired     = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "expired"}
		readyOddity = issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ready-unknown"}
	)
	root := testpki.MustCA(testpki.CAOptions{CommonName: "pipeline root"})
	oddity := issuancetest.NotReady(readyOddity, issuers.TypeUnknown, issuers.ReasonReady, "")
	oddity.Ready = true
	source := issuancetest.NewSource(
		issuancetest.CAState(t, ca, root),
		issuancetest.CAState(t, clusterCA, root),
		issuancetest.NotReady(vault, issuers.TypeVault, issuers.ReasonUnsupportedIssuer, "signet does not sign with Vault issuers"),
		issuancetest.NotReady(twoTypes, issuers.TypeUnknown, issuers.ReasonInvalidConfig, "spec sets more than one issuer type"),
		issuancetest.NotReady(noSecret, issuers.TypeCA, issuers.ReasonSecretNotFound, "CA Secret ns/s not found"),
		issuancetest.NotReady(expired, issuers.TypeCA, issuers.ReasonCAExpired, "CA certificate expired"),
		oddity,
	)
	good := issuancetest.CSR(t, issuancetest.Key(t), "app", "app.example.com")
	alice := &issuance.Requester{Username: "alice"}
	issued := &issuance.Issued{CertificatePEM: []byte("cert")}

	tests := []struct {
		desc         string
		req          issuance.Request
		policy       issuance.Policy
		allowed      map[issuers.Ref]bool
		referenceErr error
		backend      recordingBackend

		wantWait     issuance.WaitCause // with wantReason
		wantFailed   bool               // with wantReason
		wantReason   string
		wantMessage  string // exact, when set
		wantIssued   bool
		wantErr      bool
		wantSARs     int
		wantBackend  bool
		wantDuration time.Duration // of the template the backend got
	}{
		{desc: "issuer not found", req: issuance.Request{Signer: missing, Requester: alice},
			wantWait: issuance.WaitIssuerNotFound, wantReason: wire.ReasonIssuerNotFound, wantMessage: "Referenced Issuer ns/missing not found"},
		{desc: "issuer type without a backend", req: issuance.Request{Signer: vault, Requester: alice},
			wantWait: issuance.WaitIssuerNotSupported, wantReason: wire.ReasonIssuerNotSupported, wantMessage: "signet does not sign with Vault issuers (Issuer ns/vault)"},
		{desc: "issuer whose type cannot be told is not ready, not unsupported", req: issuance.Request{Signer: twoTypes, Requester: alice},
			allowed: map[issuers.Ref]bool{twoTypes: true}, wantSARs: 1,
			wantWait: issuance.WaitIssuerNotReady, wantReason: wire.ReasonIssuerNotReady, wantMessage: "Issuer ns/two-types is not ready: spec sets more than one issuer type"},
		{desc: "requester may not reference the issuer", req: issuance.Request{Signer: ca, Requester: alice, PKCS10: good},
			wantSARs: 1, wantFailed: true, wantReason: wire.ReasonDeniedReference, wantMessage: "Requester may not reference Namespaced Issuer ns/ca"},
		{desc: "the reference check comes before readiness", req: issuance.Request{Signer: noSecret, Requester: alice},
			wantSARs: 1, wantFailed: true, wantReason: wire.ReasonDeniedReference},
		{desc: "the reference check fails", req: issuance.Request{Signer: ca, Requester: alice, PKCS10: good},
			referenceErr: errors.New("kube-apiserver unreachable"), wantSARs: 1, wantErr: true},
		{desc: "cluster issuers are not checked by default", req: issuance.Request{Signer: clusterCA, Requester: alice, PKCS10: good},
			backend: recordingBackend{outcome: issued}, wantIssued: true, wantBackend: true, wantDuration: wire.DefaultDuration},
		{desc: "cluster issuers are checked when the policy says so", req: issuance.Request{Signer: clusterCA, Requester: alice, PKCS10: good},
			policy: issuance.Policy{ClusterSignerReferenceCheck: true}, wantSARs: 1,
			wantFailed: true, wantReason: wire.ReasonDeniedReference, wantMessage: "Requester may not reference ClusterIssuer cluster-ca"},
		{desc: "no requester: the edge authorized the request, no check", req: issuance.Request{Signer: ca, PKCS10: good},
			backend: recordingBackend{outcome: issued}, wantIssued: true, wantBackend: true, wantDuration: wire.DefaultDuration},
		{desc: "CA Secret missing", req: issuance.Request{Signer: noSecret},
			wantWait: issuance.WaitIssuerNotReady, wantReason: wire.ReasonSecretMissing, wantMessage: "Issuer ns/no-secret is not ready: CA Secret ns/s not found"},
		{desc: "CA expired", req: issuance.Request{Signer: expired},
			wantWait: issuance.WaitIssuerNotReady, wantReason: wire.ReasonIssuerNotReady},
		{desc: "a ready issuer of unknown type has no backend", req: issuance.Request{Signer: readyOddity},
			wantWait: issuance.WaitIssuerNotSupported, wantReason: wire.ReasonIssuerNotSupported},
		{desc: "what the edge could not read fails the request, after the issuer checks",
			req:        issuance.Request{Signer: ca, PKCS10: good, Malformed: &issuance.Failed{Reason: wire.ReasonErrorParseDuration, Message: "bad annotation"}},
			wantFailed: true, wantReason: wire.ReasonErrorParseDuration, wantMessage: "bad annotation"},
		{desc: "a malformed request to a missing issuer waits for the issuer",
			req:      issuance.Request{Signer: missing, Malformed: &issuance.Failed{Reason: wire.ReasonErrorParseDuration, Message: "bad annotation"}},
			wantWait: issuance.WaitIssuerNotFound, wantReason: wire.ReasonIssuerNotFound},
		{desc: "duration under the minimum", req: issuance.Request{Signer: ca, PKCS10: good, Duration: dur(9 * time.Minute)},
			wantFailed: true, wantReason: wire.ReasonInvalidDuration, wantMessage: "requested duration 9m0s is shorter than the minimum 10m0s"},
		{desc: "the request's own fault, from the PKI layer", req: issuance.Request{Signer: ca, PKCS10: []byte("not pem")},
			wantFailed: true, wantReason: signers.ReasonErrorParseCSR},
		{desc: "the duration asked for reaches the backend", req: issuance.Request{Signer: ca, PKCS10: good, Duration: dur(time.Hour)},
			backend: recordingBackend{outcome: issued}, wantIssued: true, wantBackend: true, wantDuration: time.Hour},
		{desc: "max-duration caps it", req: issuance.Request{Signer: ca, PKCS10: good, Duration: dur(8760 * time.Hour)}, policy: issuance.Policy{MaxDuration: 24 * time.Hour},
			backend: recordingBackend{outcome: issued}, wantIssued: true, wantBackend: true, wantDuration: 24 * time.Hour},
		{desc: "allowed requester, the backend signs", req: issuance.Request{Signer: ca, PKCS10: good, Requester: alice, IsCA: true},
			allowed: map[issuers.Ref]bool{ca: true}, wantSARs: 1,
			backend: recordingBackend{outcome: issued}, wantIssued: true, wantBackend: true, wantDuration: wire.DefaultDuration},
		{desc: "the backend's wait is the outcome", req: issuance.Request{Signer: ca, PKCS10: good},
			backend:  recordingBackend{outcome: &issuance.Waiting{For: issuance.WaitRequestSecret, Reason: wire.ReasonSecretMissing, Message: "no key", Backoff: true}},
			wantWait: issuance.WaitRequestSecret, wantReason: wire.ReasonSecretMissing, wantBackend: true, wantDuration: wire.DefaultDuration},
		{desc: "the backend's failure is the outcome", req: issuance.Request{Signer: ca, PKCS10: good},
			backend:    recordingBackend{outcome: &issuance.Failed{Reason: wire.ReasonSigningError, Message: "no"}},
			wantFailed: true, wantReason: wire.ReasonSigningError, wantBackend: true, wantDuration: wire.DefaultDuration},
		{desc: "the backend's error is the pipeline's", req: issuance.Request{Signer: ca, PKCS10: good},
			backend: recordingBackend{err: errors.New("transient")}, wantErr: true, wantBackend: true, wantDuration: wire.DefaultDuration},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			refs := &references{allowed: tt.allowed, err: tt.referenceErr}
			backend := tt.backend
			p := issuance.New(source, map[issuers.Type]issuance.Backend{issuers.TypeCA: &backend}, tt.policy, refs, clocktesting.NewFakePassiveClock(time.Now()))
			out, err := p.Issue(context.Background(), &tt.req)
			if refs.calls != tt.wantSARs {
				t.Errorf("%d reference checks, want %d", refs.calls, tt.wantSARs)
			}
			if (backend.calls > 0) != tt.wantBackend {
				t.Errorf("backend called %d times, want called: %v", backend.calls, tt.wantBackend)
			}
			if tt.wantBackend && backend.tmpl.Duration != tt.wantDuration {
				t.Errorf("template duration %s, want %s", backend.tmpl.Duration, tt.wantDuration)
			}
			if tt.wantErr {
				if err == nil || out != nil {
					t.Fatalf("Issue = %#v, %v; want an error", out, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			var reason, message string
			switch o := out.(type) {
			case *issuance.Waiting:
				if tt.wantWait == 0 || o.For != tt.wantWait {
					t.Fatalf("Waiting for %d (%s: %s), want wait %d / failed %v / issued %v", o.For, o.Reason, o.Message, tt.wantWait, tt.wantFailed, tt.wantIssued)
				}
				reason, message = o.Reason, o.Message
			case *issuance.Failed:
				if !tt.wantFailed {
					t.Fatalf("Failed %s: %s, want wait %d / issued %v", o.Reason, o.Message, tt.wantWait, tt.wantIssued)
				}
				reason, message = o.Reason, o.Message
			case *issuance.Issued:
				if !tt.wantIssued {
					t.Fatalf("Issued, want wait %d / failed %v", tt.wantWait, tt.wantFailed)
				}
				return
			default:
				t.Fatalf("outcome %#v", out)
			}
			if reason != tt.wantReason || message == "" || (tt.wantMessage != "" && message != tt.wantMessage) {
				t.Errorf("%s: %q, want %s: %q", reason, message, tt.wantReason, tt.wantMessage)
			}
		})
	}
}

func TestLifetime(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		desc       string
		asked      *time.Duration
		max        time.Duration
		want       time.Duration
		wantReason string
	}{
		{"nothing asked: 90 days", nil, 0, 90 * day, ""},
		{"asked", dur(2 * time.Hour), 0, 2 * time.Hour, ""},
		{"exactly the minimum", dur(10 * time.Minute), 0, 10 * time.Minute, ""},
		{"under the minimum", dur(10*time.Minute - time.Second), 0, 0, wire.ReasonInvalidDuration},
		{"zero", dur(0), 0, 0, wire.ReasonInvalidDuration},
		{"negative", dur(-time.Hour), 0, 0, wire.ReasonInvalidDuration},
		{"max-duration caps the default", nil, day, day, ""},
		{"max-duration caps what was asked", dur(8760 * time.Hour), 30 * day, 30 * day, ""},
		{"max-duration leaves shorter requests alone", dur(time.Hour), day, time.Hour, ""},
		{"max-duration does not lift the minimum", dur(5 * time.Minute), day, 0, wire.ReasonInvalidDuration},
		{"negative max-duration: no cap", dur(8760 * time.Hour), -1, 8760 * time.Hour, ""},
	}
	for _, tt := range tests {
		got, failed := issuance.Policy{MaxDuration: tt.max}.Lifetime(tt.asked)
		switch {
		case tt.wantReason != "" && (failed == nil || failed.Reason != tt.wantReason):
			t.Errorf("%s: %s, %+v; want %s", tt.desc, got, failed, tt.wantReason)
		case tt.wantReason == "" && (failed != nil || got != tt.want):
			t.Errorf("%s: %s, %+v; want %s", tt.desc, got, failed, tt.want)
		}
	}
}

// The read model's short-lived CA rule gets the default grant the pipeline
// gives: 90 days, or --max-duration when shorter.
func TestCAExpiryPolicy(t *testing.T) {
	day := 24 * time.Hour
	for _, tt := range []struct {
		policy issuance.Policy
		want   issuers.CAExpiryPolicy
	}{
		{issuance.Policy{}, issuers.CAExpiryPolicy{DefaultGrant: 90 * day}},
		{issuance.Policy{MaxDuration: 7 * day}, issuers.CAExpiryPolicy{DefaultGrant: 7 * day}},
		{issuance.Policy{MaxDuration: 200 * day}, issuers.CAExpiryPolicy{DefaultGrant: 90 * day}},
		{issuance.Policy{PKI: signers.Policy{CapToCAExpiry: true}}, issuers.CAExpiryPolicy{DefaultGrant: 90 * day, CapToCAExpiry: true}},
	} {
		if got := tt.policy.CAExpiryPolicy(); got != tt.want {
			t.Errorf("%+v: %+v, want %+v", tt.policy, got, tt.want)
		}
		if got, _ := tt.policy.Lifetime(nil); got != tt.want.DefaultGrant {
			t.Errorf("%+v: Lifetime(nil) = %s, the default grant %s", tt.policy, got, tt.want.DefaultGrant)
		}
	}
}
