package wire

import (
	"fmt"
	"time"
)

// maxDurationAnnotationBytes bounds the request-duration annotation; any
// real Go duration is far shorter.
const maxDurationAnnotationBytes = 64

// RequestAnnotations is what a requester asks for through a CSR's annotations.
type RequestAnnotations struct {
	// Duration is the request-duration annotation; nil when absent.
	Duration *time.Duration
	// IsCA: request-is-ca is exactly "true" (cert-manager compares it so too).
	IsCA bool
	// PrivateKeySecretName is the private-key-secret-name annotation.
	PrivateKeySecretName string
}

// ParseRequestAnnotations reads a CSR's annotations. A request-duration that
// is present but not a Go duration (empty included) is an error: the request
// fails with ReasonErrorParseDuration, as in cert-manager. Range checks
// (MinDuration) are the policy's, not the parser's.
func ParseRequestAnnotations(a map[string]string) (RequestAnnotations, error) {
	out := RequestAnnotations{
		IsCA:                 a[AnnotationRequestIsCA] == "true",
		PrivateKeySecretName: a[AnnotationPrivateKeySecretName],
	}
	s, ok := a[AnnotationRequestDuration]
	if !ok {
		return out, nil
	}
	if len(s) > maxDurationAnnotationBytes {
		return out, fmt.Errorf("annotation %s is longer than %d bytes", AnnotationRequestDuration, maxDurationAnnotationBytes)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return out, fmt.Errorf("annotation %s: %q is not a duration such as \"2160h\" or \"90m\"", AnnotationRequestDuration, s)
	}
	out.Duration = &d
	return out, nil
}
