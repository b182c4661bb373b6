package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	writeConflicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_csr_write_conflicts_total",
		Help: "CSR writes kube-apiserver refused with 409 Conflict (the CSR changed since it was read: another replica, a denial, or a stale cache), by write (certificate, failed, ca_annotation).",
	}, []string{"write"})
	notLeading = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signet_csr_not_leading_total",
		Help: "CSR syncs put off because this replica could not be sure it still held the leader lease.",
	})
	issueLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_csr_approved_to_issued_seconds",
		Help:    "Time from a CSR's Approved condition to signet writing its certificate (the condition has one-second resolution).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
	}, []string{"issuer_kind", "issuer_type"})
)

func init() {
	legacyregistry.RawMustRegister(csrsHandled, writeConflicts, notLeading, issueLatency)
}

// Writes, for signet_csr_write_conflicts_total.
const (
	writeCertificate  = "certificate"
	writeFailed       = "failed"
	writeCAAnnotation = "ca_annotation"
)

func countConflict(err error, write string) {
	if apierrors.IsConflict(err) {
		writeConflicts.WithLabelValues(write).Inc()
	}
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
