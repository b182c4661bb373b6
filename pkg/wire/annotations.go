package wire

import (
	"fmt"
	"strconv"
	"time"
)

// maxDurationAnnotationBytes bounds the request-duration annotation; any
// real Go duration is far shorter.
const maxDurationAnnotationBytes = 64

// RequestAnnotations is what a requester asks for through a CSR's annotations.
type RequestAnnotations struct {
	// Duration is the lifetime asked for: the request-duration annotation,
	// else spec.expirationSeconds; nil when neither is set.
	Duration *time.Duration
	// IsCA: request-is-ca is exactly "true" (cert-manager compares it so too).
	IsCA bool
	// PrivateKeySecretName is the private-key-secret-name annotation.
	PrivateKeySecretName string
}

// ParseRequestAnnotations reads a CSR's annotations, and its
// spec.expirationSeconds, which the request-duration annotation overrides
// (cert-manager's rule). A request-duration that is present but not a Go
// duration (empty included) is an error: the request fails with
// ReasonErrorParseDuration, as in cert-manager. Range checks (MinDuration)
// are the policy's, not the parser's.
func ParseRequestAnnotations(a map[string]string, expirationSeconds *int32) (RequestAnnotations, error) {
	out := RequestAnnotations{
		IsCA:                 a[AnnotationRequestIsCA] == "true",
		PrivateKeySecretName: a[AnnotationPrivateKeySecretName],
	}
	s, ok := a[AnnotationRequestDuration]
	if !ok {
		if expirationSeconds != nil {
			d := time.Duration(*expirationSeconds) * time.Second
			out.Duration = &d
		}
		return out, nil
	}
	if len(s) > maxDurationAnnotationBytes {
		return out, fmt.Errorf("annotation %s is longer than %d bytes", AnnotationRequestDuration, maxDurationAnnotationBytes)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// Echo the value only while its quoted form is short: a byte that is
		// not UTF-8 quotes to four.
		v := strconv.Quote(s)
		if len(v) > maxDurationAnnotationBytes+2 {
			v = "its value"
		}
		return out, fmt.Errorf("annotation %s: %s is not a duration such as \"2160h\" or \"90m\"", AnnotationRequestDuration, v)
	}
	out.Duration = &d
	return out, nil
}
