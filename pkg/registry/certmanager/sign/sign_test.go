package sign

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

// issuer answers with a fixed outcome and keeps the request it was given.
type issuer struct {
	outcome issuance.Outcome
	err     error
	got     *issuance.Request
}

func (i *issuer) Issue(_ context.Context, req *issuance.Request) (issuance.Outcome, error) {
	i.got = req
	return i.outcome, i.err
}

// The subresource turns the pipeline's outcome into an HTTP answer, and a
// SigningRequest into a request with no requester (RBAC on the subresource
// was the check).
func TestCreate(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		desc      string
		outcome   issuance.Outcome
		err       error
		wantCode  int32 // 0: issued
		wantCause string
	}{
		{desc: "issued", outcome: &issuance.Issued{CertificatePEM: []byte("leaf"), CAPEM: []byte("ca"), NotBefore: now, NotAfter: now.Add(time.Hour)}},
		{desc: "failed: 400 with the CSR reason as the cause", outcome: &issuance.Failed{Reason: wire.ReasonInvalidDuration, Message: "too short"}, wantCode: 400, wantCause: wire.ReasonInvalidDuration},
		{desc: "no such signer: 404", outcome: &issuance.Waiting{For: issuance.WaitIssuerNotFound, Reason: wire.ReasonIssuerNotFound}, wantCode: 404},
		{desc: "unsupported issuer type: 400", outcome: &issuance.Waiting{For: issuance.WaitIssuerNotSupported, Reason: wire.ReasonIssuerNotSupported, Message: "no Vault"}, wantCode: 400},
		{desc: "not ready: 409", outcome: &issuance.Waiting{For: issuance.WaitIssuerNotReady, Reason: wire.ReasonIssuerNotReady}, wantCode: 409},
		{desc: "CA expired since ready: 409", outcome: &issuance.Waiting{For: issuance.WaitIssuerNotReady, Reason: wire.ReasonIssuerNotReady, Backoff: true}, wantCode: 409},
		{desc: "transient error: 500", err: errors.New("boom"), wantCode: 500},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			is := &issuer{outcome: tt.outcome, err: tt.err}
			r := NewREST(issuers.KindIssuer, is)
			ctx := genericapirequest.WithNamespace(context.Background(), "team")
			secs := int32(3600)
			in := &certmanager.SigningRequest{Spec: certmanager.SigningRequestSpec{Request: []byte("pem"), Usages: []string{"client auth"}, IsCA: true, ExpirationSeconds: &secs}}
			out, err := r.Create(ctx, "ca", in, nil, nil)

			req := is.got
			if req == nil || req.Signer != (issuers.Ref{Kind: issuers.KindIssuer, Namespace: "team", Name: "ca"}) || string(req.PKCS10) != "pem" ||
				!req.IsCA || req.Duration == nil || *req.Duration != time.Hour || req.Requester != nil || req.Object.UID == "" {
				t.Fatalf("request to the pipeline %+v", req)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatal(err)
				}
				st := out.(*certmanager.SigningRequest).Status
				if string(st.Certificate) != "leaf" || string(st.CA) != "ca" || !st.NotAfter.Time.Equal(now.Add(time.Hour)) {
					t.Errorf("status %+v", st)
				}
				return
			}
			var status apierrors.APIStatus
			if !errors.As(err, &status) || status.Status().Code != tt.wantCode {
				t.Fatalf("err = %v, want HTTP %d", err, tt.wantCode)
			}
			if tt.wantCause != "" {
				d := status.Status().Details
				if d == nil || len(d.Causes) != 1 || string(d.Causes[0].Type) != tt.wantCause {
					t.Errorf("details %+v, want cause %s", d, tt.wantCause)
				}
			}
		})
	}
}
