package backends_test

import (
	"testing"

	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/backends"
	"github.com/signet-dev/signet/pkg/issuers"
)

// The table has a backend for each issuer type signet signs with, and none
// for the types it leaves waiting (IssuerTypeNotSupported).
func TestTable(t *testing.T) {
	all := backends.New(issuance.Deps{})
	for _, typ := range []issuers.Type{issuers.TypeCA, issuers.TypeSelfSigned} {
		if all[typ] == nil {
			t.Errorf("no backend for %s issuers", typ)
		}
	}
	for _, typ := range []issuers.Type{issuers.TypeVault, issuers.TypeACME, issuers.TypeVenafi, issuers.TypeUnknown} {
		if all[typ] != nil {
			t.Errorf("a backend for %s issuers, which signet does not sign with", typ)
		}
	}
}
