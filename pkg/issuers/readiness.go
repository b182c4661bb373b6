package issuers

import (
	"errors"
	"fmt"
	"time"

	"github.com/signet-dev/signet/pkg/signers"
)

// CASecretState is what the read model knows of a CA issuer's Secret when it
// decides the issuer's readiness.
type CASecretState struct {
	Key SecretKey
	// Answered is true once the first read of the Secret has completed,
	// whatever it found.
	Answered bool
	// ReadErr is why the Secret could not be read (forbidden, say) while its
	// content is unknown; nil once a read succeeded.
	ReadErr error
	// Found is whether the Secret exists.
	Found bool
	// CA is the parsed CA, set even when CAErr says it is unusable (a
	// certificate that is not a CA, a key that does not match) so that its
	// details can be shown.
	CA *signers.CA
	// CAErr is why the Secret holds no usable CA.
	CAErr error
}

// Readiness is an issuer's computed Ready condition.
type Readiness struct {
	Ready   bool
	Reason  string
	Message string
	// CA is the CA a CA issuer signs with (or would, were it valid).
	CA *signers.CA
	// CAExpiry says whether CA outlives certificates of the default
	// duration; set whenever CA parsed without error. Its
	// LastTransitionTime is left to the Cache, which knows the previous State.
	CAExpiry *CAExpiry
}

// ComputeReadiness is the readiness policy: whether iss can sign at now,
// given what is known of its CA Secret (ignored for other issuer types) and
// the signing policy (for CAExpiry).
func ComputeReadiness(iss *Issuer, secret CASecretState, policy signers.Policy, now time.Time) Readiness {
	if iss.ConfigError != "" {
		return Readiness{Reason: ReasonInvalidConfig, Message: fmt.Sprintf("%s: %s", iss.Ref, iss.ConfigError)}
	}
	switch iss.Type {
	case TypeCA:
		return caReadiness(secret, policy, now)
	case TypeSelfSigned:
		return Readiness{Ready: true, Reason: ReasonReady,
			Message: "signs each request with the private key named by its experimental.cert-manager.io/private-key-secret-name annotation"}
	case TypeVault, TypeACME, TypeVenafi:
		return Readiness{Reason: ReasonUnsupportedIssuer, Message: fmt.Sprintf("signet does not sign with %s issuers", iss.Type)}
	}
	return Readiness{Reason: ReasonInvalidConfig, Message: fmt.Sprintf("%s: unknown issuer type", iss.Ref)}
}

func caReadiness(secret CASecretState, policy signers.Policy, now time.Time) Readiness {
	key := secret.Key
	switch {
	case !secret.Answered:
		return Readiness{Reason: ReasonPending, Message: fmt.Sprintf("waiting for the first read of CA Secret %s", key)}
	case secret.ReadErr != nil:
		return Readiness{Reason: ReasonPending, Message: fmt.Sprintf("reading CA Secret %s: %v", key, secret.ReadErr)}
	case !secret.Found:
		return Readiness{Reason: ReasonSecretNotFound, Message: fmt.Sprintf("CA Secret %s not found", key)}
	}
	r := Readiness{CA: secret.CA}
	err := secret.CAErr
	if err == nil && secret.CA == nil {
		err = fmt.Errorf("CA Secret %s holds no CA", key)
	}
	if err == nil {
		r.CAExpiry = caExpiry(secret.CA.Certificate, policy, now)
		err = secret.CA.CheckValidity(key.String(), now)
	}
	if err != nil {
		var caErr *signers.CAError
		if errors.As(err, &caErr) {
			r.Reason, r.Message = caErr.Reason, caErr.Message
		} else {
			r.Reason, r.Message = ReasonSecretInvalid, err.Error()
		}
		return r
	}
	r.Ready, r.Reason = true, ReasonReady
	r.Message = fmt.Sprintf("signing with CA %s, valid until %s", secret.CA.Certificate.Subject, secret.CA.Certificate.NotAfter.UTC().Format(time.RFC3339))
	return r
}

// clockChangesState reports whether a State would be computed differently
// at now though nothing but the clock changed: its CA has become valid or
// invalid, or short-lived under policy.
func clockChangesState(s *State, policy signers.Policy, now time.Time) bool {
	if s.CA == nil {
		return false
	}
	nowValid := !now.Before(s.CA.Certificate.NotBefore) && !now.After(s.CA.Certificate.NotAfter)
	wasValid := s.Reason != ReasonCAExpired && s.Reason != ReasonCANotYetValid
	if nowValid != wasValid {
		return true
	}
	return s.CAExpiry != nil && caExpiry(s.CA.Certificate, policy, now).ShortLived != s.CAExpiry.ShortLived
}
