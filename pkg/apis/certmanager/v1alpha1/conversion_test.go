package v1alpha1_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/apis/certmanager/install"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
)

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return scheme
}

// fullStatus sets every status field, so that a field the conversion drops
// shows up as a difference.
func fullStatus() v1alpha1.SignerStatus {
	notBefore := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return v1alpha1.SignerStatus{
		Conditions: []metav1.Condition{{
			Type:               v1alpha1.SignerConditionReady,
			Status:             metav1.ConditionTrue,
			ObservedGeneration: 3,
			LastTransitionTime: metav1.NewTime(notBefore.Add(time.Hour)),
			Reason:             "Ready",
			Message:            "CA key pair loaded from Secret ca-key-pair",
		}},
		CA: &v1alpha1.CertificateAuthority{
			Subject:           "CN=signet test CA,O=signet",
			Issuer:            "CN=signet root CA,O=signet",
			SerialNumber:      "5d2c1a0b",
			NotBefore:         metav1.NewTime(notBefore),
			NotAfter:          metav1.NewTime(notBefore.AddDate(1, 0, 0)),
			FingerprintSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			KeyAlgorithm:      "ECDSA P-256",
		},
	}
}

func fullObjectMeta(namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              "ca-issuer",
		Namespace:         namespace,
		UID:               "0b7d2a3c-8e4f-4a51-9d3e-6c1f2b7a9e10",
		ResourceVersion:   "42",
		Generation:        3,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		Labels:            map[string]string{"team": "platform"},
		Annotations:       map[string]string{"example.com/note": "demo"},
	}
}

func fullSigner() *v1alpha1.Signer {
	return &v1alpha1.Signer{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Signer"},
		ObjectMeta: fullObjectMeta("team-a"),
		Spec: v1alpha1.SignerSpec{
			SignerName: "issuers.cert-manager.io/team-a.ca-issuer",
			IssuerRef:  v1alpha1.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "ca-issuer"},
			Type:       v1alpha1.SignerTypeCA,
		},
		Status: fullStatus(),
	}
}

func fullClusterSigner() *v1alpha1.ClusterSigner {
	return &v1alpha1.ClusterSigner{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "ClusterSigner"},
		ObjectMeta: fullObjectMeta(""),
		Spec: v1alpha1.SignerSpec{
			SignerName: "clusterissuers.cert-manager.io/ca-issuer",
			IssuerRef:  v1alpha1.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: "ca-issuer"},
			Type:       v1alpha1.SignerTypeCA,
		},
		Status: fullStatus(),
	}
}

// TestFixturesSetEveryField guards the round-trip tests below: a spec or
// status field added later must be set in the fixtures, or a conversion that
// drops it would go unnoticed.
func TestFixturesSetEveryField(t *testing.T) {
	for name, v := range map[string]any{
		"Signer.spec":          fullSigner().Spec,
		"Signer.status":        fullSigner().Status,
		"ClusterSigner.spec":   fullClusterSigner().Spec,
		"ClusterSigner.status": fullClusterSigner().Status,
	} {
		for _, path := range zeroFields(reflect.ValueOf(v), name) {
			t.Errorf("fixture leaves %s unset", path)
		}
	}
}

// zeroFields lists the paths of zero-valued exported fields under v. Structs
// are walked except metav1.Time, which counts as one value; slices and
// pointers are followed.
func zeroFields(v reflect.Value, path string) []string {
	if v.IsZero() {
		return []string{path}
	}
	switch v.Kind() {
	case reflect.Pointer:
		return zeroFields(v.Elem(), path)
	case reflect.Slice:
		var zero []string
		for i := range v.Len() {
			zero = append(zero, zeroFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return zero
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(metav1.Time{}) {
			return nil
		}
		var zero []string
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				zero = append(zero, zeroFields(v.Field(i), path+"."+f.Name)...)
			}
		}
		return zero
	}
	return nil
}

func TestRoundTripThroughInternalKeepsEveryField(t *testing.T) {
	scheme := newScheme(t)
	for name, in := range map[string]runtime.Object{
		"Signer":        fullSigner(),
		"ClusterSigner": fullClusterSigner(),
		"SignerList": &v1alpha1.SignerList{
			TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "SignerList"},
			ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next"},
			Items:    []v1alpha1.Signer{*fullSigner()},
		},
		"ClusterSignerList": &v1alpha1.ClusterSignerList{
			TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "ClusterSignerList"},
			ListMeta: metav1.ListMeta{ResourceVersion: "42"},
			Items:    []v1alpha1.ClusterSigner{*fullClusterSigner()},
		},
	} {
		t.Run(name, func(t *testing.T) {
			original := in.DeepCopyObject()

			internal, err := scheme.ConvertToVersion(in, certmanager.SchemeGroupVersion)
			if err != nil {
				t.Fatalf("converting to internal: %v", err)
			}
			if pkg := reflect.TypeOf(internal).Elem().PkgPath(); pkg != reflect.TypeOf(certmanager.Signer{}).PkgPath() {
				t.Fatalf("converted to %T, want a type of package certmanager (%s)", internal, pkg)
			}
			out, err := scheme.ConvertToVersion(internal, v1alpha1.SchemeGroupVersion)
			if err != nil {
				t.Fatalf("converting back to v1alpha1: %v", err)
			}
			if !equality.Semantic.DeepEqual(original, out) {
				t.Errorf("round trip changed the object:\n%s", diff.Diff(original, out))
			}
			if !reflect.DeepEqual(in, original) {
				t.Errorf("conversion modified its input")
			}
		})
	}
}

func TestSignerJSONRoundTripThroughInternal(t *testing.T) {
	scheme := newScheme(t)
	codecs := serializer.NewCodecFactory(scheme)
	encoder := codecs.LegacyCodec(v1alpha1.SchemeGroupVersion)
	for name, in := range map[string]runtime.Object{
		"Signer":        fullSigner(),
		"ClusterSigner": fullClusterSigner(),
	} {
		t.Run(name, func(t *testing.T) {
			data, err := runtime.Encode(encoder, in)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			// The API server decodes into the internal version and encodes
			// from it; do the same.
			internal, err := runtime.Decode(codecs.UniversalDecoder(certmanager.SchemeGroupVersion), data)
			if err != nil {
				t.Fatalf("decoding into internal: %v", err)
			}
			data, err = runtime.Encode(encoder, internal)
			if err != nil {
				t.Fatalf("encoding from internal: %v", err)
			}
			out, err := runtime.Decode(codecs.UniversalDecoder(v1alpha1.SchemeGroupVersion), data)
			if err != nil {
				t.Fatalf("decoding into v1alpha1: %v", err)
			}
			if !equality.Semantic.DeepEqual(in, out) {
				t.Errorf("JSON round trip changed the object:\n%s", diff.Diff(in, out))
			}
		})
	}
}

func TestFieldLabelConversion(t *testing.T) {
	scheme := newScheme(t)
	for _, kind := range []string{"Signer", "ClusterSigner"} {
		gvk := v1alpha1.SchemeGroupVersion.WithKind(kind)
		for _, tc := range []struct {
			label, value string
			wantErr      bool
		}{
			{label: "metadata.name", value: "ca-issuer"},
			{label: "metadata.namespace", value: "team-a"},
			{label: "spec.type", value: "CA"},
			{label: "spec.signerName", value: "issuers.cert-manager.io/team-a.ca-issuer", wantErr: true},
			{label: "status.ca.notAfter", value: "2027-01-01T00:00:00Z", wantErr: true},
			{label: "", value: "x", wantErr: true},
		} {
			t.Run(kind+"/"+tc.label, func(t *testing.T) {
				label, value, err := scheme.ConvertFieldLabel(gvk, tc.label, tc.value)
				if tc.wantErr {
					if err == nil {
						t.Fatalf("field label %q accepted, want an error", tc.label)
					}
					return
				}
				if err != nil {
					t.Fatalf("field label %q rejected: %v", tc.label, err)
				}
				if label != tc.label || value != tc.value {
					t.Errorf("got %s=%s, want %s=%s unchanged", label, value, tc.label, tc.value)
				}
			})
		}
	}
}
