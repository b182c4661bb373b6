package podcertificates

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// The rules a PodCertificateRequest meets before signet signs it, as pure
// functions. kube-apiserver has already checked what kubelet filled in
// (NodeRestriction binds the pod, its ServiceAccount and the node to the
// requesting kubelet) and that the stub PKCS#10 request is self-signed by a
// key of a type it accepts; these rules are signet's.

// Condition reasons. A Denied or Failed condition is final: kubelet does not
// retry the projection while the pod lives.
const (
	// ReasonDeniedNamespace (Denied): a namespaced Issuer signs only for pods
	// in its own namespace.
	ReasonDeniedNamespace = "DeniedNamespace"
	// ReasonDeniedReference (Denied): the pod's ServiceAccount may not
	// reference the signer; the name is the CSR path's.
	ReasonDeniedReference = "DeniedReference"
	// ReasonInvalidUnverifiedUserAnnotations (Denied): the request carries an
	// unverifiedUserAnnotations key signet does not know.
	ReasonInvalidUnverifiedUserAnnotations = certificatesv1.PodCertificateRequestConditionInvalidUserConfig
	// ReasonUnsupportedKeyType (Denied): a key type signet cannot sign for.
	ReasonUnsupportedKeyType = certificatesv1.PodCertificateRequestConditionUnsupportedKeyType
	// ReasonIssuerTypeNotSupported (Failed): the issuer is not a CA issuer.
	ReasonIssuerTypeNotSupported = "IssuerTypeNotSupported"
	// ReasonErrorParseCSR (Failed): the stub request does not parse; kube-apiserver
	// checks it on create, so only a request stored by another writer gets here.
	ReasonErrorParseCSR = signers.ReasonErrorParseCSR
	// ReasonSigningError (Failed): the CA could not sign.
	ReasonSigningError = wire.ReasonSigningError
	// ReasonIssued is the Issued condition's reason.
	ReasonIssued = "Issued"
)

// ReasonCAExpiresTooSoon is the event of a request that waits for a renewed
// CA, beside the pipeline's waits (IssuerNotFound, IssuerNotReady,
// SecretMissing, TrustBundleNotRecorded); each is retried when what it waits
// for changes (the issuer, its CA Secret) or with backoff.
const ReasonCAExpiresTooSoon = "CAExpiresTooSoon"

// Lifetimes of pod certificates.
const (
	// MinLifetime is kube-apiserver's minimum for an issued pod certificate.
	MinLifetime = time.Hour
	// DefaultLifetime is what kube-apiserver defaults maxExpirationSeconds to.
	DefaultLifetime = 24 * time.Hour
	// Backdate moves NotBefore into the past for clock skew. kube-apiserver
	// refuses a NotBefore more than 5 minutes from its own clock, so it is
	// well under that (the CSR path's 5 minutes would be refused).
	Backdate = time.Minute
	// refreshMargin is kube-apiserver's bound on beginRefreshAt: at least
	// this long after NotBefore and before NotAfter.
	refreshMargin = 10 * time.Minute
)

// Denial ends a request with a Denied or Failed condition.
type Denial struct {
	// Condition is Denied (the request is refused) or Failed (it could not
	// be signed).
	Condition string
	Reason    string
	Message   string
}

func (d *Denial) Error() string { return d.Condition + "/" + d.Reason + ": " + d.Message }

func denied(reason, format string, args ...interface{}) *Denial {
	return &Denial{Condition: certificatesv1.PodCertificateRequestConditionTypeDenied, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func failed(reason, format string, args ...interface{}) *Denial {
	return &Denial{Condition: certificatesv1.PodCertificateRequestConditionTypeFailed, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Wait is why a request is not signed yet; it stays pending.
type Wait struct {
	Reason  string
	Message string
}

func (w *Wait) Error() string { return w.Reason + ": " + w.Message }

// CheckNamespace denies a pod the namespaced Issuer of another namespace:
// whoever may create pods in a namespace must not get certificates from
// another namespace's CA, whatever RBAC says.
func CheckNamespace(podNamespace string, ref issuers.Ref) *Denial {
	if ref.Kind == issuers.KindIssuer && podNamespace != ref.Namespace {
		return denied(ReasonDeniedNamespace,
			"pod in namespace %s may not use Issuer %s/%s: a namespaced Issuer signs only for pods in its own namespace (use a ClusterIssuer to serve several namespaces)",
			podNamespace, ref.Namespace, ref.Name)
	}
	return nil
}

// SupportedUserAnnotations are the unverifiedUserAnnotations keys signet
// reads. None yet: every key is unknown, and the request is denied, as the
// API asks of signers, so that a pod author never believes a key took effect.
var SupportedUserAnnotations = []string{}

// maxEchoedKeys bounds how many unknown keys a message names.
const maxEchoedKeys = 5

// CheckUserAnnotations denies a request with a key signet does not know.
func CheckUserAnnotations(annotations map[string]string) *Denial {
	var unknown []string
	for k := range annotations {
		if !slices.Contains(SupportedUserAnnotations, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	more := ""
	if len(unknown) > maxEchoedKeys {
		more = fmt.Sprintf(" and %d more", len(unknown)-maxEchoedKeys)
		unknown = unknown[:maxEchoedKeys]
	}
	quoted := make([]string, len(unknown))
	for i, k := range unknown {
		// Keys are validated annotation keys (at most 316 bytes, printable).
		quoted[i] = strconv.Quote(k)
	}
	supported := "signet supports no unverifiedUserAnnotations keys"
	if len(SupportedUserAnnotations) > 0 {
		supported = "signet supports " + strings.Join(SupportedUserAnnotations, ", ")
	}
	return denied(ReasonInvalidUnverifiedUserAnnotations, "unknown unverifiedUserAnnotations key(s) %s%s; %s: remove them from the podCertificate volume's userAnnotations",
		strings.Join(quoted, ", "), more, supported)
}

// KeyTypes are the podCertificate keyType values signet signs, in kubelet's
// spelling; together they are every type kube-apiserver accepts.
var KeyTypes = []string{"RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519"}

// SuggestedKeyType is what an UnsupportedKeyType denial suggests.
const SuggestedKeyType = "ECDSAP256"

// KeyType is the kubelet keyType name of pub, or "" if signet does not sign
// for it.
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "ED25519"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ECDSAP256"
		case elliptic.P384():
			return "ECDSAP384"
		case elliptic.P521():
			return "ECDSAP521"
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 3072:
			return "RSA3072"
		case 4096:
			return "RSA4096"
		}
	}
	return ""
}

// PublicKey is the public key of the stub PKCS#10 request kubelet made with
// the pod's new key. Its subject, extensions and anything else in it are
// ignored: what a pod certificate says comes from the verified fields only.
// kube-apiserver verified the request's signature on create.
func PublicKey(stub []byte) (crypto.PublicKey, *Denial) {
	csr, err := x509.ParseCertificateRequest(stub)
	if err != nil {
		return nil, failed(ReasonErrorParseCSR, "spec.stubPKCS10Request is not a PKCS#10 request: %v", err)
	}
	if KeyType(csr.PublicKey) == "" {
		return nil, denied(ReasonUnsupportedKeyType, "signet does not sign %s keys; use keyType %s (signet signs %s)",
			signers.KeyAlgorithm(csr.PublicKey), SuggestedKeyType, strings.Join(KeyTypes, ", "))
	}
	return csr.PublicKey, nil
}

// ServiceAccountUser is the user a pod's ServiceAccount authenticates as, and
// its groups, as kube-apiserver's token authenticator makes them.
func ServiceAccountUser(namespace, serviceAccount string) (string, []string) {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
}

// SPIFFEID is the pod's identity: spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
func SPIFFEID(trustDomain, namespace, serviceAccount string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/ns/" + namespace + "/sa/" + serviceAccount}
}

// ValidateTrustDomain checks a SPIFFE trust domain name: lower-case letters,
// digits, '.', '-' and '_', at most 255 characters (SPIFFE ID spec, 2.1).
func ValidateTrustDomain(td string) error {
	if td == "" {
		return fmt.Errorf("trust domain is empty")
	}
	if len(td) > 255 {
		return fmt.Errorf("trust domain %q is longer than 255 characters", td)
	}
	for _, r := range td {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("trust domain %q: %q is not allowed; use lower-case letters, digits, '.', '-' and '_'", td, r)
		}
	}
	// The SPIFFE ID path segments come from a namespace and a ServiceAccount
	// name, which are DNS labels and subdomains: nothing to escape there.
	return nil
}

// Validity is a pod certificate's validity window and kubelet's refresh hint.
type Validity struct {
	NotBefore, NotAfter, BeginRefreshAt time.Time
}

// Lifetime is how long a pod certificate lives: maxExpirationSeconds (24h
// when absent, as kube-apiserver defaults it), capped by maxDuration when
// that is positive. A result under MinLifetime cannot be issued.
func Lifetime(maxExpirationSeconds *int32, maxDuration time.Duration) time.Duration {
	d := DefaultLifetime
	if maxExpirationSeconds != nil {
		d = time.Duration(*maxExpirationSeconds) * time.Second
	}
	if maxDuration > 0 && maxDuration < d {
		d = maxDuration
	}
	return d
}

// ValidityFor places a certificate of lifetime d at now, inside the signing
// CA's own validity: NotBefore is Backdate before now but not before the CA's
// NotBefore, NotAfter is NotBefore + d but not after the CA's NotAfter (a leaf
// outliving its CA would not verify). Times are whole seconds, as a
// certificate encodes them. A window under MinLifetime — the CA expires
// within the hour — is a Wait for a rotated CA.
//
// BeginRefreshAt, kubelet's hint to ask for the next certificate, is at two
// thirds of the window, kept at least 10 minutes from either end as
// kube-apiserver requires.
func ValidityFor(now time.Time, d time.Duration, ca *x509.Certificate) (Validity, *Wait) {
	nb := now.Add(-Backdate).UTC().Truncate(time.Second)
	if caNB := ca.NotBefore.UTC(); nb.Before(caNB) {
		nb = caNB
	}
	na := nb.Add(d)
	if caNA := ca.NotAfter.UTC(); na.After(caNA) {
		na = caNA
	}
	if na.Sub(nb) < MinLifetime {
		return Validity{}, &Wait{Reason: ReasonCAExpiresTooSoon, Message: fmt.Sprintf(
			"CA certificate %s expires at %s, less than %s from now: a pod certificate must live at least %s and not outlive its CA; waiting for the issuer's CA to be renewed",
			ca.Subject, ca.NotAfter.UTC().Format(time.RFC3339), MinLifetime, MinLifetime)}
	}
	return Validity{NotBefore: nb, NotAfter: na, BeginRefreshAt: BeginRefreshAt(nb, na)}, nil
}

// BeginRefreshAt is two thirds into [notBefore, notAfter], at least 10
// minutes after notBefore and at least 10 minutes before notAfter (for any
// window of at least 20 minutes), in whole seconds.
func BeginRefreshAt(notBefore, notAfter time.Time) time.Time {
	life := notAfter.Sub(notBefore)
	at := notBefore.Add(life * 2 / 3).Truncate(time.Second)
	if latest := notAfter.Add(-refreshMargin); at.After(latest) {
		at = latest
	}
	if earliest := notBefore.Add(refreshMargin); at.Before(earliest) {
		at = earliest
	}
	return at
}

// serialLimit: serials are 128 random bits.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// Template is what signet signs for a pod: the pod's public key, its SPIFFE
// ID as the only name (the subject is empty, so crypto/x509 marks the SAN
// extension critical as RFC 5280 asks), digital signature with server and
// client authentication, not a CA.
func Template(pub crypto.PublicKey, spiffeID *url.URL, v Validity) (*signers.Template, error) {
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	serial.Add(serial, big.NewInt(1)) // never zero
	cert := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             v.NotBefore,
		NotAfter:              v.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{spiffeID},
	}
	return &signers.Template{Cert: cert, PublicKey: pub, Duration: v.NotAfter.Sub(v.NotBefore)}, nil
}
