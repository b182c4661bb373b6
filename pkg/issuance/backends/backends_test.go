package backends_test

import (
	"testing"

	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/backends"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/pkg/issuers"
)

// The table has a backend for each issuer type: CA and SelfSigned of their
// own, and one CertificateRequest backend, built once, for every type
// cert-manager signs with. Unknown has none (such an issuer is never ready).
func TestTable(t *testing.T) {
	all := backends.New(issuance.Deps{})
	for _, typ := range []issuers.Type{issuers.TypeCA, issuers.TypeSelfSigned} {
		if all[typ] == nil {
			t.Errorf("no backend for %s issuers", typ)
		}
	}
	bridge := all[issuers.TypeVault]
	if _, ok := bridge.(*certificaterequest.Backend); !ok {
		t.Fatalf("Vault issuers' backend is %T, want the CertificateRequest backend", bridge)
	}
	for _, typ := range []issuers.Type{issuers.TypeACME, issuers.TypeVenafi, issuers.TypeExternal} {
		if all[typ] != bridge {
			t.Errorf("%s issuers' backend is not the one CertificateRequest backend", typ)
		}
	}
	if all[issuers.TypeUnknown] != nil {
		t.Error("a backend for issuers of unknown type")
	}
}
