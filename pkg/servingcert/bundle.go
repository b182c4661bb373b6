package servingcert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"maps"
	"strings"
	"time"
)

// HeartbeatPrefix starts the APIService annotations that record, for each CA
// a signet replica put in the caBundle, when that replica last said it still
// serves with it: HeartbeatPrefix + fingerprint → RFC 3339 time. A CA whose
// heartbeat stops (its replica is gone, and its key with it) is dropped from
// the bundle; bundle entries without a heartbeat are someone else's and are
// left alone unless expired.
const HeartbeatPrefix = "serving-ca.signet.dev/"

// Fingerprint names a CA in a heartbeat annotation: the first 16 bytes of
// the SHA-256 of its DER, in hex (32 characters, within the 63 an annotation
// name may have).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:16])
}

// merged is what mergeBundle decided.
type merged struct {
	bundle      []byte
	annotations map[string]string
	// dropped are the fingerprints of the CAs removed, for the log.
	dropped []string
}

// mergeBundle returns the caBundle and annotations that an APIService
// should have so that it trusts own (this replica's CAs, heartbeat now), keeps
// every other live replica's CA and every CA it doesn't manage, and drops
// expired CAs and CAs whose heartbeat is older than staleAfter. PEM blocks
// that are not parseable certificates are dropped: kube-apiserver could not
// use them either. The order of the kept entries is kept.
func mergeBundle(bundle []byte, annotations map[string]string, own []*x509.Certificate, now time.Time, staleAfter time.Duration) merged {
	ownFP := map[string]*x509.Certificate{}
	for _, c := range own {
		ownFP[Fingerprint(c)] = c
	}
	out := merged{annotations: maps.Clone(annotations)}
	if out.annotations == nil {
		out.annotations = map[string]string{}
	}
	var buf bytes.Buffer
	kept := map[string]bool{}
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		fp := Fingerprint(c)
		if kept[fp] {
			continue // a duplicate
		}
		if _, mine := ownFP[fp]; !mine && (now.After(c.NotAfter) || stale(annotations[HeartbeatPrefix+fp], now, staleAfter)) {
			out.dropped = append(out.dropped, fp)
			continue
		}
		kept[fp] = true
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	for _, c := range own {
		fp := Fingerprint(c)
		if !kept[fp] {
			kept[fp] = true
			_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		out.annotations[HeartbeatPrefix+fp] = now.UTC().Format(time.RFC3339)
	}
	// A heartbeat without its CA in the bundle is left over: remove it.
	for k := range out.annotations {
		if fp, ok := strings.CutPrefix(k, HeartbeatPrefix); ok && !kept[fp] {
			delete(out.annotations, k)
		}
	}
	out.bundle = buf.Bytes()
	return out
}

// stale reports whether heartbeat, an RFC 3339 time, is older than
// staleAfter. No heartbeat means the CA isn't signet's to judge: not stale.
// An unreadable one is stale: only signet writes these annotations.
func stale(heartbeat string, now time.Time, staleAfter time.Duration) bool {
	if heartbeat == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339, heartbeat)
	return err != nil || now.Sub(t) > staleAfter
}

// contains reports whether bundle holds c.
func contains(bundle []byte, c *x509.Certificate) bool {
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" && bytes.Equal(block.Bytes, c.Raw) {
			return true
		}
	}
}
