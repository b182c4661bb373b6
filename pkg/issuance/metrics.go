package issuance

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/signet-dev/signet/pkg/issuers"
)

// certificatesPastCAExpiry counts what the default (cert-manager's) validity
// rule allows and --cap-to-ca-expiry forbids.
var certificatesPastCAExpiry = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "signet_certificates_past_ca_expiry_total",
	Help: "Certificates issued that end after their CA certificate's NotAfter (CSRs and the sign subresource), by issuer kind (Issuer, ClusterIssuer).",
}, []string{"issuer_kind"})

func init() {
	legacyregistry.RawMustRegister(certificatesPastCAExpiry)
}

// CountIssued records a certificate handed out for an issuer of kind. Each
// edge calls it once per certificate it returns or writes: a certificate
// whose write conflicted was never handed out.
func CountIssued(kind issuers.Kind, issued *Issued) {
	if issued.OutlivesCA {
		certificatesPastCAExpiry.WithLabelValues(string(kind)).Inc()
	}
}
