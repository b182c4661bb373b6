package podcertificates

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/signet-dev/signet/pkg/issuers"
)

const (
	resultIssued  = "issued"
	resultDenied  = "denied"
	resultFailed  = "failed"
	resultWaiting = "waiting"
)

// The PodCertificateRequest metrics, beside the CSR controller's
// signet_csr_handled_total and signet_csr_approved_to_issued_seconds.
var (
	pcrsHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_pcr_handled_total",
		Help: "PodCertificateRequests handled, by issuer kind, issuer type and result (issued, denied, failed, waiting).",
	}, []string{"issuer_kind", "issuer_type", "result"})
	pcrLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_pcr_created_to_issued_seconds",
		Help:    "Time from a PodCertificateRequest's creation to signet writing its certificate (creationTimestamp has one-second resolution).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
	}, []string{"issuer_kind", "issuer_type"})
)

func init() {
	legacyregistry.RawMustRegister(pcrsHandled, pcrLatency)
}

func observe(ref issuers.Ref, typ issuers.Type, result string) {
	if typ == "" {
		typ = "unknown"
	}
	pcrsHandled.WithLabelValues(string(ref.Kind), string(typ), result).Inc()
}

func observeIssued(ref issuers.Ref, typ issuers.Type, created, now time.Time) {
	observe(ref, typ, resultIssued)
	pcrLatency.WithLabelValues(string(ref.Kind), string(typ)).Observe(now.Sub(created).Seconds())
}
