package certificaterequest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/signet-dev/signet/pkg/issuance"
)

// GVR is cert-manager's CertificateRequest resource.
var GVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificaterequests"}

// Labels and annotations signet puts on the CertificateRequests it creates.
const (
	// LabelRequestUID holds the UID of the request a CertificateRequest was
	// made for (a CSR's UID). signet lists and watches only CertificateRequests
	// with this label, so its cache holds only its own.
	LabelRequestUID = "signet.cert-manager.io/request-uid"
	// AnnotationRequest names that request: "<kind> <name>" (the kind is
	// CertificateSigningRequest or SigningRequest).
	AnnotationRequest = "signet.cert-manager.io/request"
)

// maxNameLength is the longest object name (a DNS subdomain).
const maxNameLength = 253

// Name is the name of the CertificateRequest made for a request: its name
// (so that `kubectl get certificaterequests` says which CSR) and a hash of
// its UID (so that a CSR deleted and created again under the same name gets
// another). It depends on nothing else, so that whichever replica and
// whichever attempt creates it, it is one object.
func Name(obj issuance.Object) string {
	sum := sha256.Sum256([]byte(obj.UID))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	base := strings.TrimRight(dnsSubdomainish(obj.Name), "-")
	if max := maxNameLength - len(suffix); len(base) > max {
		base = base[:max]
	}
	if base == "" {
		base = "request"
	}
	return base + suffix
}

// dnsSubdomainish maps s to lower-case letters, digits and '-' (anything
// else, dots too, becomes '-'), starting with a letter or digit: with the
// suffix it is a valid name whatever the request's name was.
func dnsSubdomainish(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return strings.TrimLeft(string(b), "-")
}
