// Package backends is the table of issuance backends: one line per
// cert-manager issuer type signet signs with. Adding an issuer type is one
// package under pkg/issuance and one line here.
package backends

import (
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/ca"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/pkg/issuance/selfsigned"
	"github.com/signet-dev/signet/pkg/issuers"
)

// table: the issuer types each backend signs with, and its constructor.
var table = []struct {
	types []issuers.Type
	new   func(issuance.Deps) issuance.Backend
}{
	{[]issuers.Type{issuers.TypeCA}, ca.New},
	{[]issuers.Type{issuers.TypeSelfSigned}, selfsigned.New},
	{certificaterequest.Types, certificaterequest.New},
}

// New builds every backend from deps, once each, and maps each issuer type
// to its backend.
func New(deps issuance.Deps) map[issuers.Type]issuance.Backend {
	out := map[issuers.Type]issuance.Backend{}
	for _, entry := range table {
		b := entry.new(deps)
		for _, typ := range entry.types {
			out[typ] = b
		}
	}
	return out
}
