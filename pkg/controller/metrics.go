package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/component-base/metrics/legacyregistry"

	// Registers the workqueue depth/latency metrics provider.
	_ "k8s.io/component-base/metrics/prometheus/workqueue"

	"github.com/signet-dev/signet/pkg/issuers"
)

const (
	resultIssued  = "issued"
	resultFailed  = "failed"
	resultWaiting = "waiting"
)

var (
	csrsHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_csr_handled_total",
		Help: "CertificateSigningRequests handled, by issuer kind, issuer type and result (issued, failed, waiting).",
	}, []string{"issuer_kind", "issuer_type", "result"})
	issueLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_csr_approved_to_issued_seconds",
		Help:    "Time from a CSR's Approved condition to signet writing its certificate (the condition has one-second resolution).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
	}, []string{"issuer_kind", "issuer_type"})
)

func init() {
	legacyregistry.RawMustRegister(csrsHandled, issueLatency)
}

func observe(ref issuers.Ref, typ, result string) {
	if typ == "" {
		typ = "unknown"
	}
	csrsHandled.WithLabelValues(string(ref.Kind), typ, result).Inc()
}

func observeIssued(ref issuers.Ref, typ string, csr *certificatesv1.CertificateSigningRequest, now time.Time) {
	observe(ref, typ, resultIssued)
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved && !c.LastUpdateTime.IsZero() {
			issueLatency.WithLabelValues(string(ref.Kind), typ).Observe(now.Sub(c.LastUpdateTime.Time).Seconds())
			return
		}
	}
}
