// Package servingcert gives signet a serving certificate without manual
// steps and without insecureSkipTLSVerify: each replica generates a CA and a
// serving certificate in memory (the keys never leave the process, so nothing
// secret is written anywhere), renews both before they expire, and keeps its
// CA in the APIService's spec.caBundle beside every other live replica's.
package servingcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	apiregistrationv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"
	"k8s.io/utils/clock"
)

// Options configure an Authority.
type Options struct {
	// Host is the serving certificate's common name; DNSNames and IPs are its
	// subject alternative names.
	Host     string
	DNSNames []string
	IPs      []net.IP
	// CAValidity and CertValidity are the lifetimes of the CA and of the
	// serving certificate. Each is renewed after two thirds of it.
	CAValidity   time.Duration
	CertValidity time.Duration
	// APIService is the APIService whose caBundle is kept current; empty:
	// none (the CA is then only good for clients told about it).
	APIService string
	// SyncPeriod is how often the caBundle is checked and this replica's
	// heartbeat renewed. Another replica's CA whose heartbeat is older than
	// StaleAfterPeriods sync periods is dropped. At least a second: heartbeats
	// are written to the second, and with a much shorter period a live
	// replica's heartbeat would look stale.
	SyncPeriod time.Duration
}

// StaleAfterPeriods sync periods without a heartbeat make a CA stale.
const StaleAfterPeriods = 5

// MinSyncPeriod is the shortest sync period: heartbeats are written to the
// second, and with a much shorter period a live replica's would look stale.
const MinSyncPeriod = time.Second

// Authority is a replica's serving CA and certificate. It is the server's
// serving certificate provider (dynamiccertificates.CertKeyContentProvider):
// listeners are told when the certificate changes.
type Authority struct {
	opts   Options
	client apiregistrationv1client.APIServiceInterface
	clock  clock.Clock

	mu sync.RWMutex
	// ca signs the current serving certificate; next, once made, is
	// published beside it and takes over once kube-apiserver trusts it.
	ca, next *keyPair
	// nextSeen is when the bundle was first seen to hold next.
	nextSeen time.Time
	serving  *keyPair
	// certPEM and keyPEM are serving's, served as is.
	certPEM, keyPEM []byte
	// published: the bundle has been seen to hold ca.
	published bool
	lastErr   error
	listeners []dynamiccertificates.Listener
}

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
	// renew is two thirds into the validity from when it was made (NotBefore
	// is backdated).
	renew time.Time
}

var (
	_ dynamiccertificates.CertKeyContentProvider = (*Authority)(nil)

	servingNotAfter = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "signet_serving_certificate_expiration_timestamp_seconds",
		Help: "NotAfter of the serving certificate signet generated for itself, as a Unix time.",
	})
)

func init() {
	legacyregistry.RawMustRegister(servingNotAfter)
}

// New makes a CA and a serving certificate. Run publishes the CA and renews
// both. client may be nil when opts.APIService is empty.
func New(opts Options, client apiregistrationv1client.APIServiceInterface) (*Authority, error) {
	return newWithClock(opts, client, clock.RealClock{})
}

func newWithClock(opts Options, client apiregistrationv1client.APIServiceInterface, clk clock.Clock) (*Authority, error) {
	switch {
	case opts.CAValidity <= 0 || opts.CertValidity <= 0:
		return nil, errors.New("serving CA and certificate validity must be positive")
	case opts.CertValidity > opts.CAValidity:
		return nil, fmt.Errorf("serving certificate validity %s is longer than the CA's %s", opts.CertValidity, opts.CAValidity)
	case opts.APIService != "" && (client == nil || opts.SyncPeriod <= 0):
		return nil, errors.New("keeping an APIService's caBundle needs a client and a positive sync period")
	case opts.APIService != "" && opts.SyncPeriod < MinSyncPeriod:
		return nil, fmt.Errorf("serving CA sync period %s is under a second, the resolution of the heartbeats", opts.SyncPeriod)
	}
	a := &Authority{opts: opts, client: client, clock: clk}
	ca, err := a.newCA()
	if err != nil {
		return nil, err
	}
	a.ca = ca
	if err := a.renewServing(); err != nil {
		return nil, err
	}
	return a, nil
}

// Name names the provider in the server's logs.
func (a *Authority) Name() string { return "signet self-managed serving certificate" }

// CurrentCertKeyContent returns the serving certificate and key, PEM.
func (a *Authority) CurrentCertKeyContent() ([]byte, []byte) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.certPEM, a.keyPEM
}

// AddListener registers l to be told when the serving certificate changes.
func (a *Authority) AddListener(l dynamiccertificates.Listener) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.listeners = append(a.listeners, l)
}

// CAPEM returns the CA that signs the current serving certificate, PEM.
func (a *Authority) CAPEM() []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.ca.cert.Raw})
}

// PublishedCheck is a readyz check that passes once the APIService's
// caBundle holds this replica's CA: before that, kube-apiserver would refuse
// this replica's certificate, so it must not get traffic. It stays passing
// if kube-apiserver is unreachable later, as the bundle it published stays.
func (a *Authority) PublishedCheck() healthz.HealthChecker {
	return healthz.NamedCheck("serving-ca-published", func(*http.Request) error {
		if a.opts.APIService == "" {
			return nil
		}
		a.mu.RLock()
		defer a.mu.RUnlock()
		if a.published {
			return nil
		}
		if a.lastErr != nil {
			return fmt.Errorf("serving CA not yet in APIService %s caBundle: %w", a.opts.APIService, a.lastErr)
		}
		return fmt.Errorf("serving CA not yet in APIService %s caBundle", a.opts.APIService)
	})
}

// Run renews the CA and serving certificate and keeps the caBundle current
// until ctx ends.
func (a *Authority) Run(ctx context.Context) {
	for {
		wait := a.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
	}
}

// step does what is due now and returns how long to wait for the next step.
func (a *Authority) step(ctx context.Context) time.Duration {
	now := a.clock.Now()
	a.mu.Lock()
	if a.next == nil && !now.Before(a.ca.renew) {
		next, err := a.newCA()
		if err != nil {
			klog.ErrorS(err, "Generating the next serving CA")
		} else {
			a.next, a.nextSeen = next, time.Time{}
			klog.InfoS("Generated the next serving CA", "notAfter", next.cert.NotAfter)
		}
	}
	a.mu.Unlock()

	if a.opts.APIService != "" {
		a.sync(ctx, now)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	// The next CA signs once kube-apiserver has had time to see it in the
	// bundle; at once if the current one has expired regardless.
	if a.next != nil && (a.opts.APIService == "" || now.After(a.ca.cert.NotAfter) ||
		(!a.nextSeen.IsZero() && now.Sub(a.nextSeen) >= a.propagation())) {
		a.ca, a.next = a.next, nil
		a.published = a.opts.APIService == "" || !a.nextSeen.IsZero()
		if err := a.renewServing(); err != nil {
			klog.ErrorS(err, "Renewing the serving certificate with the next CA")
		}
	} else if !now.Before(a.serving.renew) {
		if err := a.renewServing(); err != nil {
			klog.ErrorS(err, "Renewing the serving certificate")
		}
	}
	wait := a.serving.cert.NotAfter.Sub(now) / 10
	if a.opts.APIService != "" {
		wait = min(wait, a.opts.SyncPeriod)
		if a.next != nil {
			wait = min(wait, a.propagation())
		}
	}
	return max(wait, 100*time.Millisecond)
}

// propagation is how long a CA new in the bundle waits before it signs.
func (a *Authority) propagation() time.Duration {
	return min(a.opts.SyncPeriod, 10*time.Second)
}

// sync merges this replica's CAs into the APIService's caBundle, renews
// their heartbeats, and drops expired and stale CAs.
func (a *Authority) sync(ctx context.Context, now time.Time) {
	a.mu.RLock()
	own := []*x509.Certificate{a.ca.cert}
	if a.next != nil {
		own = append(own, a.next.cert)
	}
	a.mu.RUnlock()

	var bundle []byte
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cur, err := a.client.Get(ctx, a.opts.APIService, metav1.GetOptions{})
		if err != nil {
			return err
		}
		m := mergeBundle(cur.Spec.CABundle, cur.Annotations, own, now, StaleAfterPeriods*a.opts.SyncPeriod)
		bundle = m.bundle
		if bytes.Equal(m.bundle, cur.Spec.CABundle) && maps.Equal(m.annotations, cur.Annotations) {
			return nil
		}
		cur.Spec.CABundle, cur.Annotations = m.bundle, m.annotations
		if _, err := a.client.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
		if len(m.dropped) > 0 {
			klog.InfoS("Dropped expired or stale CAs from the caBundle", "apiService", a.opts.APIService, "fingerprints", m.dropped)
		}
		return nil
	})

	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("APIService %s does not exist: %w", a.opts.APIService, err)
		}
		if a.lastErr == nil || a.lastErr.Error() != err.Error() {
			klog.ErrorS(err, "Publishing the serving CA in the APIService caBundle", "apiService", a.opts.APIService)
		}
		a.lastErr = err
		return
	}
	a.lastErr = nil
	if contains(bundle, a.ca.cert) && !a.published {
		a.published = true
		klog.InfoS("Serving CA published in the APIService caBundle", "apiService", a.opts.APIService, "fingerprint", Fingerprint(a.ca.cert))
	}
	if a.next != nil && a.nextSeen.IsZero() && contains(bundle, a.next.cert) {
		a.nextSeen = now
	}
}

// renewServing issues a new serving certificate from a.ca and tells the
// listeners. a.mu must be held.
func (a *Authority) renewServing() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	notAfter := now.Add(a.opts.CertValidity)
	if notAfter.After(a.ca.cert.NotAfter) {
		notAfter = a.ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: a.opts.Host},
		DNSNames:    a.opts.DNSNames,
		IPAddresses: a.opts.IPs,
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	cert, err := a.issue(tmpl, &key.PublicKey, a.ca)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	a.serving = &keyPair{cert: cert, key: key, renew: renewAt(now, cert.NotAfter)}
	a.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	a.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	servingNotAfter.Set(float64(cert.NotAfter.Unix()))
	klog.InfoS("New serving certificate", "notAfter", cert.NotAfter, "ca", Fingerprint(a.ca.cert))
	for _, l := range a.listeners {
		l.Enqueue()
	}
	return nil
}

// newCA makes a self-signed CA that may only sign serving certificates
// (path length 0).
func (a *Authority) newCA() (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: fmt.Sprintf("signet-serving-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(a.opts.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert, err := a.issue(tmpl, &key.PublicKey, &keyPair{key: key})
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key, renew: renewAt(now, cert.NotAfter)}, nil
}

// issue signs tmpl with parent's key; a parent without a certificate makes
// tmpl self-signed.
func (a *Authority) issue(tmpl *x509.Certificate, pub crypto.PublicKey, parent *keyPair) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	parentCert := parent.cert
	if parentCert == nil {
		parentCert = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, parent.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// backdate allows for clocks a little behind this one.
const backdate = 5 * time.Minute

// renewAt is two thirds of the way from issued to notAfter.
func renewAt(issued, notAfter time.Time) time.Time {
	return issued.Add(notAfter.Sub(issued) * 2 / 3)
}
