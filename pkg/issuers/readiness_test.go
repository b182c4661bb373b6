package issuers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/signers"
)

func caData(ca *testpki.CA) map[string][]byte {
	return map[string][]byte{signers.TLSCertKey: ca.CertPEM(), signers.TLSKeyKey: ca.KeyPEM()}
}

func mustParseCA(t *testing.T, ca *testpki.CA) *signers.CA {
	t.Helper()
	parsed, err := signers.ParseCA("ns/ca", caData(ca))
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func TestComputeReadiness(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := mustParseCA(t, testpki.MustCA(testpki.CAOptions{CommonName: "valid", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}))
	expired := mustParseCA(t, testpki.MustCA(testpki.CAOptions{CommonName: "old", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}))
	future := mustParseCA(t, testpki.MustCA(testpki.CAOptions{CommonName: "future", NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)}))
	key := SecretKey{Namespace: "ns", Name: "ca"}
	caIssuer := &Issuer{Ref: Ref{Kind: KindIssuer, Namespace: "ns", Name: "ca"}, Type: TypeCA, CA: &CAConfig{SecretName: "ca"}}
	read := func(ca *signers.CA, caErr error) CASecretState {
		return CASecretState{Key: key, Answered: true, Found: true, CA: ca, CAErr: caErr}
	}

	tests := []struct {
		desc        string
		issuer      *Issuer
		secret      CASecretState
		wantReady   bool
		wantReason  string
		wantMessage string // a substring
		wantCA      *signers.CA
	}{
		{"config error wins over everything", &Issuer{Ref: caIssuer.Ref, Type: TypeCA, ConfigError: "spec.ca.secretName is empty"}, read(valid, nil),
			false, ReasonInvalidConfig, "Issuer ns/ca: spec.ca.secretName is empty", nil},
		{"CA Secret not read yet", caIssuer, CASecretState{Key: key},
			false, ReasonPending, "waiting for the first read of CA Secret ns/ca", nil},
		{"CA Secret unreadable", caIssuer, CASecretState{Key: key, Answered: true, ReadErr: errors.New("secrets \"ca\" is forbidden")},
			false, ReasonPending, "reading CA Secret ns/ca: secrets \"ca\" is forbidden", nil},
		{"CA Secret missing", caIssuer, CASecretState{Key: key, Answered: true},
			false, ReasonSecretNotFound, "CA Secret ns/ca not found", nil},
		{"CA Secret invalid", caIssuer, read(nil, &signers.CAError{Reason: ReasonSecretInvalid, Message: "Secret ns/ca has no tls.crt"}),
			false, ReasonSecretInvalid, "Secret ns/ca has no tls.crt", nil},
		{"key mismatch keeps the CA for display", caIssuer, read(valid, &signers.CAError{Reason: ReasonKeyMismatch, Message: "Secret ns/ca: tls.key does not match"}),
			false, ReasonKeyMismatch, "does not match", valid},
		{"a parse error that is no CAError", caIssuer, read(nil, errors.New("boom")),
			false, ReasonSecretInvalid, "boom", nil},
		{"found but nothing parsed", caIssuer, read(nil, nil),
			false, ReasonSecretInvalid, "CA Secret ns/ca holds no CA", nil},
		{"CA expired", caIssuer, read(expired, nil),
			false, ReasonCAExpired, "expired at", expired},
		{"CA not yet valid", caIssuer, read(future, nil),
			false, ReasonCANotYetValid, "is not valid before", future},
		{"CA ready", caIssuer, read(valid, nil),
			true, ReasonReady, "signing with CA CN=valid,O=signet tests, valid until 2030-06-01T13:00:00Z", valid},
		{"SelfSigned is always ready", &Issuer{Ref: caIssuer.Ref, Type: TypeSelfSigned, SelfSigned: &SelfSignedConfig{}}, CASecretState{},
			true, ReasonReady, "private-key-secret-name", nil},
		{"Vault is not signed by signet", &Issuer{Ref: caIssuer.Ref, Type: TypeVault}, CASecretState{},
			false, ReasonUnsupportedIssuer, "signet does not sign with Vault issuers", nil},
		{"ACME", &Issuer{Ref: caIssuer.Ref, Type: TypeACME}, CASecretState{}, false, ReasonUnsupportedIssuer, "ACME", nil},
		{"Venafi", &Issuer{Ref: caIssuer.Ref, Type: TypeVenafi}, CASecretState{}, false, ReasonUnsupportedIssuer, "Venafi", nil},
		{"unknown type", &Issuer{Ref: Ref{Kind: KindClusterIssuer, Name: "x"}, Type: TypeUnknown}, CASecretState{},
			false, ReasonInvalidConfig, "ClusterIssuer x: unknown issuer type", nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := ComputeReadiness(tt.issuer, tt.secret, signers.Policy{}, now)
			if got.Ready != tt.wantReady || got.Reason != tt.wantReason || !strings.Contains(got.Message, tt.wantMessage) || got.CA != tt.wantCA {
				t.Errorf("got ready=%v reason=%s message=%q CA=%p; want ready=%v reason=%s message containing %q CA=%p",
					got.Ready, got.Reason, got.Message, got.CA, tt.wantReady, tt.wantReason, tt.wantMessage, tt.wantCA)
			}
		})
	}
}

func TestComputeReadinessSaysWhetherTheCAOutlivesTheDefaultDuration(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	iss := &Issuer{Ref: Ref{Kind: KindIssuer, Namespace: "ns", Name: "ca"}, Type: TypeCA, CA: &CAConfig{SecretName: "ca"}}
	long := mustParseCA(t, testpki.MustCA(testpki.CAOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}))
	short := mustParseCA(t, testpki.MustCA(testpki.CAOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}))
	read := func(ca *signers.CA, err error) CASecretState {
		return CASecretState{Key: SecretKey{"ns", "ca"}, Answered: true, Found: true, CA: ca, CAErr: err}
	}
	for _, tt := range []struct {
		desc   string
		secret CASecretState
		want   string // CAExpiry's reason; empty: no CAExpiry
	}{
		{"a CA for a year", read(long, nil), ReasonCAOutlivesDefaultDuration},
		{"a CA for an hour", read(short, nil), ReasonCAExpiresWithinDefaultDuration},
		{"an unusable CA", read(short, &signers.CAError{Reason: ReasonKeyMismatch, Message: "x"}), ""},
		{"no CA", CASecretState{Key: SecretKey{"ns", "ca"}, Answered: true}, ""},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			got := ComputeReadiness(iss, tt.secret, signers.Policy{}, now).CAExpiry
			if (got == nil) != (tt.want == "") || (got != nil && got.Reason != tt.want) {
				t.Errorf("CAExpiry %+v, want reason %q", got, tt.want)
			}
		})
	}
}

func TestClockChangesState(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	ca := mustParseCA(t, testpki.MustCA(testpki.CAOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}))
	tests := []struct {
		desc   string
		state  *State
		at     time.Time
		expect bool
	}{
		{"no CA", &State{Reason: ReasonSecretNotFound}, now, false},
		{"ready and still valid", &State{CA: ca, Ready: true, Reason: ReasonReady}, now, false},
		{"ready, now expired", &State{CA: ca, Ready: true, Reason: ReasonReady}, now.Add(2 * time.Hour), true},
		{"ready, at NotAfter exactly", &State{CA: ca, Ready: true, Reason: ReasonReady}, ca.Certificate.NotAfter, false},
		{"expired, still expired", &State{CA: ca, Reason: ReasonCAExpired}, now.Add(2 * time.Hour), false},
		{"not yet valid, now valid", &State{CA: ca, Reason: ReasonCANotYetValid}, now, true},
		{"key mismatch, still valid", &State{CA: ca, Reason: ReasonKeyMismatch}, now, false},
		{"outlived the default duration, no longer does", &State{CA: ca, Ready: true, Reason: ReasonReady, CAExpiry: &CAExpiry{ShortLived: false}}, now, true},
		{"short-lived and still", &State{CA: ca, Ready: true, Reason: ReasonReady, CAExpiry: &CAExpiry{ShortLived: true}}, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := clockChangesState(tt.state, signers.Policy{}, tt.at); got != tt.expect {
				t.Errorf("clockChangesState = %v, want %v", got, tt.expect)
			}
		})
	}
}
