// +k8s:deepcopy-gen=package
// +groupName=cert-manager.io

// Package certmanager holds the internal (hub) version of signet's
// cert-manager.io API: Signer and ClusterSigner. Every served version
// converts to and from these types; they are never serialized.
package certmanager
