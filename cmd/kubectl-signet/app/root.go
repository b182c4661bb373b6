// Package app is the kubectl-signet plugin: commands that turn a cert-manager
// Certificate manifest into a key and a signed certificate through signet,
// and that show which signers work and which requests wait on them.
package app

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
)

// StdStreams are the process's standard streams.
func StdStreams() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
}

// Clients are what the commands talk to; tests pass fakes.
type Clients struct {
	Kube   kubernetes.Interface
	Signet versioned.Interface
	// Namespace is from --namespace or the kubeconfig context; Explicit says
	// it was given with --namespace.
	Namespace string
	Explicit  bool
}

// ClientsFunc builds Clients once a command runs (after flags are parsed).
type ClientsFunc func() (*Clients, error)

// NewCommand is the kubectl-signet root command with clients from the
// standard kubectl flags (--kubeconfig, --context, --namespace, ...).
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	// "status --cluster" selects cluster signers; the kubeconfig cluster is
	// chosen with --context instead.
	flags.ClusterName = nil
	clients := func() (*Clients, error) {
		cfg, err := flags.ToRESTConfig()
		if err != nil {
			return nil, err
		}
		cfg = rest.CopyConfig(cfg)
		cfg.UserAgent = "kubectl-signet/" + rest.DefaultKubernetesUserAgent()
		ns, explicit, err := flags.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, err
		}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		signet, err := versioned.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return &Clients{Kube: kube, Signet: signet, Namespace: ns, Explicit: explicit}, nil
	}
	cmd := NewCommandWithClients(streams, clients)
	flags.AddFlags(cmd.PersistentFlags())
	return cmd
}

// NewCommandWithClients is the root command with clients from newClients.
func NewCommandWithClients(streams genericiooptions.IOStreams, newClients ClientsFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubectl-signet",
		Short: "Get certificates from cert-manager issuers through signet",
		Long: `kubectl signet requests certificates from cert-manager Issuers and
ClusterIssuers through signet, and shows which signers can sign and which
requests wait on them.

  create csr   generate a key and a Kubernetes CertificateSigningRequest from a
               cert-manager Certificate manifest; optionally wait for it
  sign         the same, in one round trip through the signers/sign subresource
  status       signers, their readiness and CA, and how many CSRs wait on each
  describe     one signer: its Ready condition, its CA and the CSRs waiting on it`,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl signet",
		},
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.AddCommand(
		newCreateCommand(streams, newClients),
		newSignCommand(streams, newClients),
		newStatusCommand(streams, newClients),
		newDescribeCommand(streams, newClients),
	)
	return cmd
}

// requestNamespace decides the namespace of the Certificate: its
// metadata.namespace, else the command line's or kubeconfig's. Like kubectl
// apply, a manifest namespace that contradicts an explicit --namespace is an
// error.
func requestNamespace(req *CertificateRequest, c *Clients) (string, error) {
	if req.Namespace == "" {
		if c.Namespace == "" {
			return "default", nil
		}
		return c.Namespace, nil
	}
	if c.Explicit && c.Namespace != req.Namespace {
		return "", fmt.Errorf("the namespace from the Certificate (%s) does not match the namespace given with --namespace (%s)", req.Namespace, c.Namespace)
	}
	return req.Namespace, nil
}
