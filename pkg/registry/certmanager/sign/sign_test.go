package sign

import (
	"context"
	"errors"
	"strings"
	"sync"
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

	mu        sync.Mutex
	answer    func(req *issuance.Request) issuance.Outcome // instead of outcome, if set
	calls     int
	withdrawn []issuance.Object
	listeners []func(issuance.Object)
}

func (i *issuer) Issue(_ context.Context, req *issuance.Request) (issuance.Outcome, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.got = req
	i.calls++
	if i.answer != nil {
		return i.answer(req), i.err
	}
	return i.outcome, i.err
}

func (i *issuer) Withdraw(_ context.Context, _ issuers.Ref, obj issuance.Object) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.withdrawn = append(i.withdrawn, obj)
	return nil
}

func (i *issuer) OnChange(f func(issuance.Object)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.listeners = append(i.listeners, f)
}

func (i *issuer) changed(obj issuance.Object) {
	i.mu.Lock()
	ls := i.listeners
	i.mu.Unlock()
	for _, f := range ls {
		f(obj)
	}
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
			r := NewREST(issuers.KindIssuer, is, Options{})
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

// A request an issuer signs through cert-manager waits for its
// CertificateRequest: woken by its change, it answers; past the timeout it
// is 504 naming what it waited for. Answered, the CertificateRequest goes.
func TestCreateWaitsForTheCertificateRequest(t *testing.T) {
	pending := &issuance.Waiting{For: issuance.WaitCertificateRequest, Reason: wire.ReasonCertificateRequestPending,
		Message: "Waiting for Vault Issuer team/vault to sign CertificateRequest team/ca-1234"}
	ctx := genericapirequest.WithNamespace(context.Background(), "team")
	in := func() *certmanager.SigningRequest {
		return &certmanager.SigningRequest{Spec: certmanager.SigningRequestSpec{Request: []byte("pem")}}
	}

	t.Run("answered when its CertificateRequest changes", func(t *testing.T) {
		is := &issuer{}
		signed := false
		is.answer = func(*issuance.Request) issuance.Outcome {
			if signed {
				return &issuance.Issued{CertificatePEM: []byte("leaf")}
			}
			return pending
		}
		r := NewREST(issuers.KindIssuer, is, Options{Timeout: time.Minute})
		go func() {
			for {
				time.Sleep(10 * time.Millisecond)
				is.mu.Lock()
				req := is.got
				is.mu.Unlock()
				if req != nil {
					is.mu.Lock()
					signed = true
					is.mu.Unlock()
					is.changed(issuance.Object{Kind: issuance.KindSigningRequest, UID: "someone else's"})
					is.changed(req.Object)
					return
				}
			}
		}()
		start := time.Now()
		out, err := r.Create(ctx, "vault", in(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(out.(*certmanager.SigningRequest).Status.Certificate) != "leaf" || time.Since(start) > 10*time.Second {
			t.Errorf("answered %+v after %s", out, time.Since(start))
		}
		if !is.got.Synchronous || !strings.Contains(is.got.Approval, "signers/sign") {
			t.Errorf("request %+v, want Synchronous with the approval naming the subresource", is.got)
		}
		if len(is.withdrawn) != 1 || is.withdrawn[0] != is.got.Object {
			t.Errorf("withdrawn %+v, want the answered request's", is.withdrawn)
		}
	})

	t.Run("504 past the timeout", func(t *testing.T) {
		is := &issuer{outcome: pending}
		r := NewREST(issuers.KindIssuer, is, Options{Timeout: 200 * time.Millisecond})
		_, err := r.Create(ctx, "vault", in(), nil, nil)
		if !apierrors.IsTimeout(err) || !strings.Contains(err.Error(), "CertificateRequest team/ca-1234") {
			t.Fatalf("err = %v, want 504 naming the CertificateRequest", err)
		}
		if len(is.withdrawn) != 0 {
			t.Errorf("withdrew %+v: a timed-out request's CertificateRequest stays for the caller to look up", is.withdrawn)
		}
	})
}

// A name that starts with an external issuer resource names that issuer
// first, then an Issuer of that very name.
func TestCreateResolvesExternalSignerNames(t *testing.T) {
	names, err := wire.NewSignerNames(wire.ExternalIssuer{Resource: "testissuers.example.com", Kind: wire.KindIssuer})
	if err != nil {
		t.Fatal(err)
	}
	var asked []issuers.Ref
	is := &issuer{}
	is.answer = func(req *issuance.Request) issuance.Outcome {
		asked = append(asked, req.Signer)
		if req.Signer.External == "" {
			return &issuance.Issued{CertificatePEM: []byte("leaf")}
		}
		return &issuance.Waiting{For: issuance.WaitIssuerNotFound, Reason: wire.ReasonIssuerNotFound}
	}
	r := NewREST(issuers.KindIssuer, is, Options{Names: names})
	ctx := genericapirequest.WithNamespace(context.Background(), "team")
	if _, err := r.Create(ctx, "testissuers.example.com.step", &certmanager.SigningRequest{Spec: certmanager.SigningRequestSpec{Request: []byte("pem")}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []issuers.Ref{
		{Kind: issuers.KindIssuer, External: "testissuers.example.com", Namespace: "team", Name: "step"},
		{Kind: issuers.KindIssuer, Namespace: "team", Name: "testissuers.example.com.step"},
	}
	if len(asked) != 2 || asked[0] != want[0] || asked[1] != want[1] {
		t.Errorf("asked %+v, want %+v", asked, want)
	}
}
