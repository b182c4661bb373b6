package selfsigned_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/issuancetest"
	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/selfsigned"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// secrets is a fake SecretReader: namespace/name → data.
type secrets struct {
	data  map[string]map[string][]byte
	err   error
	asked []string
}

func (s *secrets) SecretData(_ context.Context, namespace, name string) (map[string][]byte, bool, error) {
	s.asked = append(s.asked, namespace+"/"+name)
	if s.err != nil {
		return nil, false, s.err
	}
	d, ok := s.data[namespace+"/"+name]
	return d, ok, nil
}

func TestIssue(t *testing.T) {
	now := time.Now()
	key, otherKey := issuancetest.Key(t), issuancetest.Key(t)
	tmpl, err := signers.BuildTemplate(signers.Input{Request: issuancetest.CSR(t, key, "self"), Duration: time.Hour}, signers.Policy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	keyData := func(k crypto.Signer) map[string][]byte {
		return map[string][]byte{signers.TLSKeyKey: testpki.KeyPEM(k)}
	}
	store := map[string]map[string][]byte{
		"ns/app-key":           keyData(key),
		"cert-manager/app-key": keyData(key),
		"ns/other-key":         keyData(otherKey),
		"ns/junk":              {signers.TLSKeyKey: []byte("junk")},
	}
	issuer := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "self"}
	cluster := issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "self"}

	tests := []struct {
		desc       string
		ref        issuers.Ref
		secretName string
		readErr    error
		wantAsked  string
		wantIssued bool
		wantWait   string // reason
		wantFailed string // reason
		wantErr    bool
	}{
		{desc: "signs with the requester's key", ref: issuer, secretName: "app-key", wantAsked: "ns/app-key", wantIssued: true},
		{desc: "a ClusterIssuer reads the cluster resource namespace", ref: cluster, secretName: "app-key", wantAsked: "cert-manager/app-key", wantIssued: true},
		{desc: "no key Secret named", ref: issuer, wantFailed: wire.ReasonMissingAnnotation},
		{desc: "key Secret missing", ref: issuer, secretName: "absent", wantAsked: "ns/absent", wantWait: wire.ReasonSecretMissing},
		{desc: "key Secret holds no key", ref: issuer, secretName: "junk", wantAsked: "ns/junk", wantWait: wire.ReasonErrorParsePrivateKey},
		{desc: "another key than the request's", ref: issuer, secretName: "other-key", wantAsked: "ns/other-key", wantFailed: wire.ReasonErrorKeyMatch},
		{desc: "the Secret cannot be read", ref: issuer, secretName: "app-key", readErr: errors.New("forbidden"), wantAsked: "ns/app-key", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := &secrets{data: store, err: tt.readErr}
			b := selfsigned.New(issuance.Deps{Secrets: s, ClusterResourceNamespace: "cert-manager"})
			state := issuancetest.SelfSignedState(tt.ref)
			state.Issuer.SelfSigned.CRLDistributionPoints = []string{"http://crl.example.com/self.crl"}
			out, err := b.Issue(context.Background(), &issuance.Request{Signer: tt.ref, PrivateKeySecretName: tt.secretName}, tmpl, state, now)
			if got := strings.Join(s.asked, ","); got != tt.wantAsked {
				t.Errorf("read Secrets %q, want %q", got, tt.wantAsked)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatalf("outcome %T %+v, want an error", out, out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch o := out.(type) {
			case *issuance.Issued:
				if !tt.wantIssued {
					t.Fatalf("Issued, want wait %q / failed %q", tt.wantWait, tt.wantFailed)
				}
				leaf := issuancetest.Leaf(t, o.CertificatePEM)
				if !signers.IsSelfSigned(leaf) || !bytes.Equal(o.CAPEM, o.CertificatePEM) {
					t.Errorf("not a self-signed certificate that is its own CA")
				}
				if len(leaf.CRLDistributionPoints) != 1 {
					t.Errorf("spec.selfSigned.crlDistributionPoints not copied: %v", leaf.CRLDistributionPoints)
				}
			case *issuance.Waiting:
				if o.Reason != tt.wantWait || o.For != issuance.WaitRequestSecret || !o.Backoff || o.Message == "" {
					t.Fatalf("Waiting %+v, want %q for the request's Secret, with backoff", o, tt.wantWait)
				}
			case *issuance.Failed:
				if o.Reason != tt.wantFailed || o.Message == "" {
					t.Fatalf("Failed %+v, want %q", o, tt.wantFailed)
				}
				if o.Reason == wire.ReasonMissingAnnotation && (!strings.Contains(o.Message, "SelfSigned") || !strings.Contains(o.Message, wire.AnnotationPrivateKeySecretName)) {
					t.Errorf("message %q should say the issuer is SelfSigned and name the annotation", o.Message)
				}
			default:
				t.Fatalf("outcome %T", out)
			}
		})
	}
}
