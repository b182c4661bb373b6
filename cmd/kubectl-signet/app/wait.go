package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	certificatesclient "k8s.io/client-go/kubernetes/typed/certificates/v1"

	"github.com/signet-dev/signet/pkg/wire"
)

// pollInterval is how often a CSR is read when it cannot be watched, and
// how long to pause before re-opening a watch that failed.
var pollInterval = 2 * time.Second

// csrWaiter follows one CSR until csrOutcome says it is done.
type csrWaiter struct {
	csrs     certificatesclient.CertificateSigningRequestInterface
	current  *certificatesv1.CertificateSigningRequest
	canWatch bool
}

// run returns nil once the certificate is issued, the terminal error of a
// failed, denied or deleted CSR, or ctx's error.
func (w *csrWaiter) run(ctx context.Context) error {
	for {
		switch err := csrOutcome(w.current); {
		case errors.Is(err, errCertificateIssued):
			return nil
		case err != nil:
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		progressed := false
		if w.canWatch {
			var err error
			if progressed, err = w.watch(ctx); err != nil {
				return err
			}
		}
		if !progressed {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pollInterval):
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		latest, err := w.csrs.Get(ctx, w.current.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("CertificateSigningRequest %s was deleted while waiting for it", w.current.Name)
		case err == nil && latest.UID == w.current.UID:
			w.current = latest
		case err == nil:
			return fmt.Errorf("CertificateSigningRequest %s was deleted and created again while waiting for it", w.current.Name)
		}
	}
}

// watch follows the CSR from its current resource version until it is done,
// the watch ends, or ctx ends. progressed says the watch delivered anything;
// a CSR that may not be watched switches the waiter to polling.
func (w *csrWaiter) watch(ctx context.Context) (progressed bool, _ error) {
	wi, err := w.csrs.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", w.current.Name).String(),
		ResourceVersion: w.current.ResourceVersion,
	})
	if err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) {
			w.canWatch = false
		}
		return false, nil
	}
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return progressed, nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return progressed, nil
			}
			switch ev.Type {
			case watch.Error:
				// Most likely 410 Gone: the caller reads the CSR again.
				return progressed, nil
			case watch.Deleted:
				return true, fmt.Errorf("CertificateSigningRequest %s was deleted while waiting for it", w.current.Name)
			}
			csr, ok := ev.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || csr.Name != w.current.Name {
				continue
			}
			if csr.UID != w.current.UID {
				return true, fmt.Errorf("CertificateSigningRequest %s was deleted and created again while waiting for it", w.current.Name)
			}
			progressed = true
			w.current = csr
			if csrOutcome(csr) != nil {
				return true, nil
			}
		}
	}
}

// latestSignetEvent is the newest event signet wrote about csr, or nil.
// Events about cluster-scoped objects such as CSRs are in namespace default.
func latestSignetEvent(ctx context.Context, kube kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest) (*corev1.Event, error) {
	list, err := kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{
			"involvedObject.kind": "CertificateSigningRequest",
			"involvedObject.name": csr.Name,
		}.AsSelector().String(),
	})
	if err != nil {
		return nil, err
	}
	var latest *corev1.Event
	for i := range list.Items {
		ev := &list.Items[i]
		if ev.InvolvedObject.Kind != "CertificateSigningRequest" || ev.InvolvedObject.Name != csr.Name {
			continue
		}
		// Events of an earlier CSR with the same name are not about this one.
		if csr.UID != "" && ev.InvolvedObject.UID != "" && ev.InvolvedObject.UID != csr.UID {
			continue
		}
		if ev.Source.Component != wire.EventSource && ev.ReportingController != wire.EventSource {
			continue
		}
		if latest == nil || eventIsNewer(ev, latest) {
			latest = ev
		}
	}
	return latest, nil
}

// eventIsNewer orders events by when they last happened. Timestamps have
// one-second resolution, so ties go to the later write (the larger resource
// version, which etcd makes increasing).
func eventIsNewer(a, b *corev1.Event) bool {
	ta, tb := eventTime(a), eventTime(b)
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	ra, errA := strconv.ParseUint(a.ResourceVersion, 10, 64)
	rb, errB := strconv.ParseUint(b.ResourceVersion, 10, 64)
	return errA == nil && errB == nil && ra > rb
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// checkCertificateKey makes sure the first certificate in chainPEM is for
// key, before it is written next to it.
func checkCertificateKey(chainPEM []byte, key crypto.Signer) error {
	block, _ := pem.Decode(chainPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("the signed certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("parsing the signed certificate: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the signed certificate is not for the generated private key")
	}
	return nil
}

// caFromAnnotation is the CA PEM signet put in the CSR's
// experimental.cert-manager.io/ca annotation (base64), or nil.
func caFromAnnotation(csr *certificatesv1.CertificateSigningRequest) ([]byte, error) {
	v, ok := csr.Annotations[wire.AnnotationCA]
	if !ok || v == "" {
		return nil, nil
	}
	data, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("CertificateSigningRequest %s: the %s annotation is not base64: %w", csr.Name, wire.AnnotationCA, err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CertificateSigningRequest %s: the %s annotation holds no PEM certificate", csr.Name, wire.AnnotationCA)
	}
	return data, nil
}
