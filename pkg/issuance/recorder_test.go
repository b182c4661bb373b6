package issuance_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/signet-dev/signet/internal/issuancetest"
	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
)

// recorder remembers what it was told, in order with the backend's calls.
type recorder struct {
	log  *[]string
	kept []time.Time
	err  error
}

func (r *recorder) KeepUntil(_ context.Context, ref issuers.Ref, ca *signers.CA, notAfter time.Time) error {
	*r.log = append(*r.log, "keep "+ref.String()+" "+ca.Certificate.Subject.CommonName)
	r.kept = append(r.kept, notAfter)
	return r.err
}

type loggingBackend struct{ log *[]string }

func (b loggingBackend) Issue(_ context.Context, _ *issuance.Request, _ *signers.Template, _ *issuers.State, _ time.Time) (issuance.Outcome, error) {
	*b.log = append(*b.log, "sign")
	return &issuance.Issued{CertificatePEM: []byte("cert")}, nil
}

// Before a CA issuer signs, the Recorder is told until when the certificate
// is valid; if it cannot record that, nothing is signed.
func TestRecorderBeforeSigning(t *testing.T) {
	ca := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
	self := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "self"}
	root := testpki.MustCA(testpki.CAOptions{CommonName: "recorded root"})
	source := issuancetest.NewSource(issuancetest.CAState(t, ca, root), issuancetest.SelfSignedState(self))
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	csr := issuancetest.CSR(t, issuancetest.Key(t), "app", "app.example.com")
	hour := time.Hour

	for _, tt := range []struct {
		desc       string
		req        issuance.Request
		recordErr  error
		wantLog    string
		wantKept   time.Time
		wantReason string
	}{
		{desc: "a CSR's certificate is recorded, then signed", req: issuance.Request{Signer: ca, PKCS10: csr, Duration: &hour},
			wantLog: "keep Issuer ns/ca recorded root,sign", wantKept: now.Add(time.Hour)},
		{desc: "an edge's template is recorded, then signed", req: issuance.Request{Signer: ca,
			Template: func(*issuers.State, time.Time) (*signers.Template, issuance.Outcome, error) {
				return &signers.Template{Cert: &x509.Certificate{NotAfter: now.Add(2 * time.Hour)}}, nil, nil
			}},
			wantLog: "keep Issuer ns/ca recorded root,sign", wantKept: now.Add(2 * time.Hour)},
		{desc: "not recorded: not signed", req: issuance.Request{Signer: ca, PKCS10: csr}, recordErr: errors.New("forbidden"),
			wantLog: "keep Issuer ns/ca recorded root", wantReason: issuance.ReasonTrustBundleNotRecorded},
		{desc: "a SelfSigned issuer has no CA to keep", req: issuance.Request{Signer: self, PKCS10: csr},
			wantLog: "sign"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			var log []string
			rec := &recorder{log: &log, err: tt.recordErr}
			backend := loggingBackend{log: &log}
			p := issuance.New(source, map[issuers.Type]issuance.Backend{issuers.TypeCA: backend, issuers.TypeSelfSigned: backend},
				issuance.Policy{}, nil, clocktesting.NewFakePassiveClock(now))
			p.SetRecorder(rec)
			out, err := p.Issue(context.Background(), &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(log, ","); got != tt.wantLog {
				t.Errorf("calls %q, want %q", got, tt.wantLog)
			}
			if !tt.wantKept.IsZero() && (len(rec.kept) != 1 || !rec.kept[0].Equal(tt.wantKept)) {
				t.Errorf("kept until %v, want %s", rec.kept, tt.wantKept)
			}
			if tt.wantReason != "" {
				w, ok := out.(*issuance.Waiting)
				if !ok || w.Reason != tt.wantReason || !w.Backoff || !strings.Contains(w.Message, "forbidden") {
					t.Errorf("outcome %#v, want a Waiting %s with backoff", out, tt.wantReason)
				}
			}
		})
	}
}
