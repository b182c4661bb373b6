package v1alpha1

import "k8s.io/apimachinery/pkg/runtime"

// Signers are computed, never written by clients, so there are no
// hand-written defaults; this hooks the generated RegisterDefaults into the
// scheme so that any added later take effect.
func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}
