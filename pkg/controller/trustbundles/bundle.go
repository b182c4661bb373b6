package trustbundles

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"maps"
	"strings"
	"time"

	"github.com/signet-dev/signet/pkg/signers"
)

// How signet's ClusterTrustBundles are named, labelled and annotated.
const (
	// NameSuffix ends the name of a signer's bundle:
	// <signerName with "/" as ":">:ca, the prefix kube-apiserver requires.
	NameSuffix = "ca"
	// LabelManagedBy marks signet's bundles: signet reads and writes only
	// ClusterTrustBundles with this label, and a projected
	// clusterTrustBundle volume selects them with it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "signet"
	// IssuedUntilPrefix starts the annotations that keep a bundle's memory:
	// IssuedUntilPrefix + Fingerprint(anchor) → RFC 3339 time, no earlier
	// than the NotAfter of every certificate signet issued (or was about to
	// issue) that chains to that anchor. An anchor the issuer no longer uses
	// stays in the bundle until then, across restarts and leader changes.
	IssuedUntilPrefix = "issued-until.signet.dev/"
)

// Name is the ClusterTrustBundle that carries signerName's trust anchors.
func Name(signerName string) string {
	return strings.ReplaceAll(signerName, "/", ":") + ":" + NameSuffix
}

// Fingerprint names an anchor in an annotation: the first 16 bytes of the
// SHA-256 of its DER in hex (32 characters, within the 63 an annotation
// name may have).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:16])
}

// Anchors are what a verifier of ca's certificates trusts: the CA
// certificates of ca.CAPEM (the Secret's ca.crt, else the last certificate
// of tls.crt). A pod presents the leaf and intermediates; the bundle holds
// the root. Certificates without the CA bit are left out: kube-apiserver
// refuses them in a bundle.
func Anchors(ca *signers.CA) []*x509.Certificate {
	if ca == nil {
		return nil
	}
	return caCertificates(ca.CAPEM)
}

// caCertificates parses the CA certificates of a PEM bundle, skipping
// anything else.
func caCertificates(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.BasicConstraintsValid || !c.IsCA {
			continue
		}
		out = append(out, c)
	}
}

// Bundle is what a signer's ClusterTrustBundle holds.
type Bundle struct {
	Anchors []*x509.Certificate
	// IssuedUntil, by anchor Fingerprint, for anchors in Anchors.
	IssuedUntil map[string]time.Time
}

// Desired is the bundle a signer should have at now:
//   - every current anchor (of the CA the issuer signs with now) that has
//     not expired;
//   - every published anchor that has not expired and under which a
//     certificate may still be valid: its IssuedUntil is after now;
//
// each once, current ones first, then the rest in published order, so that
// an unchanged input gives an unchanged bundle. IssuedUntil keeps the entries
// of the anchors kept that are still ahead. next is when the answer changes
// by the clock alone (an anchor expires, or its IssuedUntil passes), zero if
// never.
func Desired(current, published []*x509.Certificate, issuedUntil map[string]time.Time, now time.Time) (b Bundle, next time.Time) {
	b.IssuedUntil = map[string]time.Time{}
	seen := map[string]bool{}
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	add := func(c *x509.Certificate, until time.Time) {
		fp := Fingerprint(c)
		seen[fp] = true
		b.Anchors = append(b.Anchors, c)
		if t, ok := issuedUntil[fp]; ok && t.After(now) {
			b.IssuedUntil[fp] = t
		}
		if until.IsZero() || c.NotAfter.Before(until) {
			until = c.NotAfter
		}
		soonest(until)
	}
	for _, c := range current {
		if seen[Fingerprint(c)] || !now.Before(c.NotAfter) {
			continue
		}
		add(c, time.Time{})
	}
	for _, c := range published {
		fp := Fingerprint(c)
		until, ok := issuedUntil[fp]
		if seen[fp] || !ok || !until.After(now) || !now.Before(c.NotAfter) {
			continue
		}
		add(c, until)
	}
	return b, next
}

// PEM is the bundle's spec.trustBundle.
func (b Bundle) PEM() string {
	var sb strings.Builder
	for _, c := range b.Anchors {
		sb.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return sb.String()
}

// Annotations returns annotations with signet's IssuedUntil entries replaced
// by b's; other annotations are kept.
func (b Bundle) Annotations(annotations map[string]string) map[string]string {
	out := maps.Clone(annotations)
	if out == nil {
		out = map[string]string{}
	}
	for k := range out {
		if strings.HasPrefix(k, IssuedUntilPrefix) {
			delete(out, k)
		}
	}
	for fp, t := range b.IssuedUntil {
		out[IssuedUntilPrefix+fp] = t.UTC().Format(time.RFC3339)
	}
	return out
}

// ParseIssuedUntil reads signet's IssuedUntil annotations; unreadable ones
// are skipped (their anchor is then not kept beyond its current use).
func ParseIssuedUntil(annotations map[string]string) map[string]time.Time {
	out := map[string]time.Time{}
	for k, v := range annotations {
		fp, ok := strings.CutPrefix(k, IssuedUntilPrefix)
		if !ok {
			continue
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			out[fp] = t
		}
	}
	return out
}

// ParseBundle reads the CA certificates of a spec.trustBundle.
func ParseBundle(trustBundle string) []*x509.Certificate {
	return caCertificates([]byte(trustBundle))
}

// keepLater raises until[fp] to t for each anchor, and reports whether any
// entry was below t.
func keepLater(until map[string]time.Time, anchors []*x509.Certificate, t time.Time) bool {
	raised := false
	for _, c := range anchors {
		fp := Fingerprint(c)
		if cur, ok := until[fp]; !ok || cur.Before(t) {
			until[fp] = t
			raised = true
		}
	}
	return raised
}

// covers reports whether until already records every anchor until t or later.
func covers(until map[string]time.Time, anchors []*x509.Certificate, t time.Time) bool {
	if len(anchors) == 0 {
		return false
	}
	for _, c := range anchors {
		if cur, ok := until[Fingerprint(c)]; !ok || cur.Before(t) {
			return false
		}
	}
	return true
}
