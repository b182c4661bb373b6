package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/signet-dev/signet/pkg/wire"
)

// GroupName is the API group signet serves.
const GroupName = wire.Group

// SchemeGroupVersion is the group version of this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder collects the functions that add this package's types,
	// conversions, defaults and field labels to a scheme.
	SchemeBuilder      runtime.SchemeBuilder
	localSchemeBuilder = &SchemeBuilder
	// AddToScheme adds this version's types to a scheme.
	AddToScheme = localSchemeBuilder.AddToScheme
)

func init() {
	// Only hand-written functions are registered here; the generated
	// conversions register themselves from zz_generated.conversion.go.
	localSchemeBuilder.Register(addKnownTypes, addDefaultingFuncs, addFieldLabelConversionFuncs)
}

// Kind takes an unqualified kind and returns it qualified with the group.
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// Resource takes an unqualified resource and returns it qualified with the group.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Signer{},
		&SignerList{},
		&ClusterSigner{},
		&ClusterSignerList{},
		&SigningRequest{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}

// Field selectors that Signers and ClusterSigners accept.
const (
	FieldMetadataName      = "metadata.name"
	FieldMetadataNamespace = "metadata.namespace"
	FieldSpecType          = "spec.type"
)

// addFieldLabelConversionFuncs lets list and watch requests select signers by
// name, namespace and issuer type. The labels are the same in every version.
func addFieldLabelConversionFuncs(scheme *runtime.Scheme) error {
	for _, kind := range []string{"Signer", "ClusterSigner"} {
		gvk := SchemeGroupVersion.WithKind(kind)
		err := scheme.AddFieldLabelConversionFunc(gvk, func(label, value string) (string, string, error) {
			switch label {
			case FieldMetadataName, FieldMetadataNamespace, FieldSpecType:
				return label, value, nil
			default:
				return "", "", fmt.Errorf("field label %q is not supported for %s: use %s, %s or %s",
					label, gvk.Kind, FieldMetadataName, FieldMetadataNamespace, FieldSpecType)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}
