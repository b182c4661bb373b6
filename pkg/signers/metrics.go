package signers

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"
)

// certificatesPastCAExpiry counts what the default (cert-manager's) validity
// rule allows and --cap-to-ca-expiry forbids. It lives beside Result so that
// the CSR controller and the sign subresource count into the same series
// without importing each other.
var certificatesPastCAExpiry = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "signet_certificates_past_ca_expiry_total",
	Help: "Certificates issued that end after their CA certificate's NotAfter (CSRs and the sign subresource), by issuer kind (Issuer, ClusterIssuer).",
}, []string{"issuer_kind"})

func init() {
	legacyregistry.RawMustRegister(certificatesPastCAExpiry)
}

// CountIssued records a certificate handed out for an issuer of issuerKind.
// Both request paths call it once per certificate they return or write.
func CountIssued(issuerKind string, r *Result) {
	if r.OutlivesCA {
		certificatesPastCAExpiry.WithLabelValues(issuerKind).Inc()
	}
}
