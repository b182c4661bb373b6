// Package apiserver is the one place where signet's API server is wired:
// Config → Complete → New installs cert-manager.io/v1alpha1 with storage
// computed from the issuers read model.
package apiserver

import (
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/apis/certmanager/install"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/registry/certmanager/clustersigner"
	"github.com/signet-dev/signet/pkg/registry/certmanager/sign"
	"github.com/signet-dev/signet/pkg/registry/certmanager/signer"
)

var (
	// Scheme holds signet's API types.
	Scheme = runtime.NewScheme()
	// Codecs serializes them.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	install.Install(Scheme)
	// The generic server wants the meta types in an empty group at v1.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{},
		&metav1.APIVersions{},
		&metav1.APIGroupList{},
		&metav1.APIGroup{},
		&metav1.APIResourceList{},
	)
}

// ExtraConfig is signet's own configuration of the server.
type ExtraConfig struct {
	// Issuers is the read model every signer is computed from.
	Issuers *issuers.Cache
	// Issuance is the pipeline the sign subresource hands requests to, the
	// same one the CSR controller uses.
	Issuance sign.Issuer
}

// Config is the whole server configuration.
type Config struct {
	GenericConfig *genericapiserver.RecommendedConfig
	ExtraConfig   ExtraConfig
}

type completedConfig struct {
	GenericConfig genericapiserver.CompletedConfig
	ExtraConfig   *ExtraConfig
}

// CompletedConfig can only be made by Complete.
type CompletedConfig struct {
	*completedConfig
}

// Server is signet's API server.
type Server struct {
	GenericAPIServer *genericapiserver.GenericAPIServer
}

// Complete fills in defaults.
func (cfg *Config) Complete() CompletedConfig {
	return CompletedConfig{&completedConfig{cfg.GenericConfig.Complete(), &cfg.ExtraConfig}}
}

// New builds the server: the API group, discovery with the reference verb,
// and a readiness check that waits for the read model.
func (c completedConfig) New() (*Server, error) {
	if c.ExtraConfig.Issuers == nil || c.ExtraConfig.Issuance == nil {
		return nil, fmt.Errorf("apiserver: ExtraConfig.Issuers and ExtraConfig.Issuance are required")
	}
	gs, err := c.GenericConfig.New("signet-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}

	verbs := newReferenceVerbManager(gs.AggregatedDiscoveryGroupManager, certmanager.GroupName, "signers", "clustersigners")
	gs.AggregatedDiscoveryGroupManager = verbs

	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(certmanager.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	apiGroupInfo.VersionedResourcesStorageMap[v1alpha1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"signers":             signer.NewREST(c.ExtraConfig.Issuers),
		"signers/sign":        sign.NewREST(issuers.KindIssuer, c.ExtraConfig.Issuance),
		"clustersigners":      clustersigner.NewREST(c.ExtraConfig.Issuers),
		"clustersigners/sign": sign.NewREST(issuers.KindClusterIssuer, c.ExtraConfig.Issuance),
	}
	if err := gs.InstallAPIGroup(&apiGroupInfo); err != nil {
		return nil, err
	}
	if err := verbs.installLegacy(gs.Handler.GoRestfulContainer, Codecs); err != nil {
		return nil, err
	}

	if err := gs.AddReadyzChecks(healthz.NamedCheck("issuers-synced", func(*http.Request) error {
		if !c.ExtraConfig.Issuers.HasSynced() {
			return fmt.Errorf("issuers, clusterissuers and their CA Secrets are not read yet")
		}
		return nil
	})); err != nil {
		return nil, err
	}
	return &Server{GenericAPIServer: gs}, nil
}
