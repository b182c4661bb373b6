// Package backends is the table of issuance backends: one line per
// cert-manager issuer type signet signs with. Adding an issuer type is one
// package under pkg/issuance and one line here.
package backends

import (
	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuance/ca"
	"github.com/signet-dev/signet/pkg/issuance/selfsigned"
	"github.com/signet-dev/signet/pkg/issuers"
)

var table = map[issuers.Type]func(issuance.Deps) issuance.Backend{
	issuers.TypeCA:         ca.New,
	issuers.TypeSelfSigned: selfsigned.New,
}

// New builds every backend from deps.
func New(deps issuance.Deps) map[issuers.Type]issuance.Backend {
	out := make(map[issuers.Type]issuance.Backend, len(table))
	for typ, newBackend := range table {
		out[typ] = newBackend(deps)
	}
	return out
}
