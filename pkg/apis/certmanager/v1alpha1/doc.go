// +k8s:openapi-gen=true
// +k8s:deepcopy-gen=package
// +k8s:conversion-gen=github.com/signet-dev/signet/pkg/apis/certmanager
// +k8s:defaulter-gen=TypeMeta
// +groupName=cert-manager.io
// +groupGoName=CertManager
// +k8s:openapi-model-package=com.github.signet-dev.signet.pkg.apis.certmanager.v1alpha1

// Package v1alpha1 is version v1alpha1 of signet's cert-manager.io API:
// read-only Signers and ClusterSigners computed from cert-manager issuers.
package v1alpha1
