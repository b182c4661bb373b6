package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/wire"
)

const timeFormat = time.RFC3339

// now is the clock for ages and expiries; tests fix it.
var now = time.Now

// signerView is a Signer or a ClusterSigner: they differ only in scope.
type signerView struct {
	Kind      string
	Namespace string
	Name      string
	Created   metav1.Time
	Spec      certmanagerv1alpha1.SignerSpec
	Status    certmanagerv1alpha1.SignerStatus
}

func fromSigner(s *certmanagerv1alpha1.Signer) signerView {
	return signerView{Kind: "Signer", Namespace: s.Namespace, Name: s.Name, Created: s.CreationTimestamp, Spec: s.Spec, Status: s.Status}
}

func fromClusterSigner(s *certmanagerv1alpha1.ClusterSigner) signerView {
	return signerView{Kind: "ClusterSigner", Name: s.Name, Created: s.CreationTimestamp, Spec: s.Spec, Status: s.Status}
}

func readyCondition(st certmanagerv1alpha1.SignerStatus) *metav1.Condition {
	return apimeta.FindStatusCondition(st.Conditions, certmanagerv1alpha1.SignerConditionReady)
}

type statusOptions struct {
	allNamespaces bool
	cluster       bool
}

func newStatusCommand(streams genericiooptions.IOStreams, newClients ClientsFunc) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [NAME] [-n NAMESPACE | -A] [--cluster]",
		Short: "Show signers: readiness, CA and how many CSRs wait on each",
		Long: `Show the signers signet computes from cert-manager Issuers (or, with
--cluster, from ClusterIssuers): whether each can sign and why not, its CA's
subject and expiry, and how many CertificateSigningRequests for its signer
name are neither signed, failed nor denied yet.`,
		Example: `  kubectl signet status -A
  kubectl signet status my-issuer -n sandbox
  kubectl signet status --cluster`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return o.run(cmd.Context(), streams, newClients, name)
		},
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "signers in all namespaces")
	cmd.Flags().BoolVar(&o.cluster, "cluster", false, "cluster signers (ClusterIssuers) instead of namespaced ones")
	return cmd
}

func (o *statusOptions) run(ctx context.Context, streams genericiooptions.IOStreams, newClients ClientsFunc, name string) error {
	if name != "" && o.allNamespaces {
		return errors.New("a signer name cannot be combined with --all-namespaces")
	}
	if o.cluster && o.allNamespaces {
		return errors.New("--cluster and --all-namespaces cannot be combined: cluster signers have no namespace")
	}
	c, err := newClients()
	if err != nil {
		return err
	}
	cm := c.Signet.CertManagerV1alpha1()
	var views []signerView
	switch {
	case o.cluster && name != "":
		s, err := cm.ClusterSigners().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return signerAPIError(err)
		}
		views = append(views, fromClusterSigner(s))
	case o.cluster:
		list, err := cm.ClusterSigners().List(ctx, metav1.ListOptions{})
		if err != nil {
			return signerAPIError(err)
		}
		for i := range list.Items {
			views = append(views, fromClusterSigner(&list.Items[i]))
		}
	case name != "":
		s, err := cm.Signers(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return signerAPIError(err)
		}
		views = append(views, fromSigner(s))
	default:
		ns := c.Namespace
		if o.allNamespaces {
			ns = metav1.NamespaceAll
		}
		list, err := cm.Signers(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return signerAPIError(err)
		}
		for i := range list.Items {
			views = append(views, fromSigner(&list.Items[i]))
		}
	}
	if len(views) == 0 {
		switch {
		case o.cluster:
			fmt.Fprintln(streams.ErrOut, "No cluster signers found.")
		case o.allNamespaces:
			fmt.Fprintln(streams.ErrOut, "No signers found.")
		default:
			fmt.Fprintf(streams.ErrOut, "No signers found in namespace %s.\n", c.Namespace)
		}
		return nil
	}
	sort.Slice(views, func(i, j int) bool {
		if views[i].Namespace != views[j].Namespace {
			return views[i].Namespace < views[j].Namespace
		}
		return views[i].Name < views[j].Name
	})

	waiting, err := waitingCSRCounts(ctx, c.Kube, views)
	if err != nil {
		fmt.Fprintf(streams.ErrOut, "Warning: cannot count waiting CertificateSigningRequests: %v\n", err)
	}
	printStatusTable(streams.Out, views, waiting, o.allNamespaces)
	return nil
}

// waitingCSRCounts counts, per signer name, the CSRs that are neither signed,
// failed nor denied. nil means they could not be listed.
func waitingCSRCounts(ctx context.Context, kube kubernetes.Interface, views []signerView) (map[string]int, error) {
	var csrs []certificatesv1.CertificateSigningRequest
	if len(views) == 1 {
		list, err := listCSRsFor(ctx, kube, views[0].Spec.SignerName)
		if err != nil {
			return nil, err
		}
		csrs = list
	} else {
		list, err := kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		csrs = list.Items
	}
	counts := map[string]int{}
	for i := range csrs {
		if st := csrStateOf(&csrs[i]); st.waiting() {
			counts[csrs[i].Spec.SignerName]++
		}
	}
	return counts, nil
}

// listCSRsFor lists the CSRs for one signer name. The field selector does
// the work on a real server; the filter keeps the answer right without it.
func listCSRsFor(ctx context.Context, kube kubernetes.Interface, signerName string) ([]certificatesv1.CertificateSigningRequest, error) {
	list, err := kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signerName", signerName).String(),
	})
	if err != nil {
		return nil, err
	}
	out := list.Items[:0]
	for _, csr := range list.Items {
		if csr.Spec.SignerName == signerName {
			out = append(out, csr)
		}
	}
	return out, nil
}

func printStatusTable(w io.Writer, views []signerView, waiting map[string]int, withNamespace bool) {
	tw := printers.GetNewTabWriter(w)
	defer tw.Flush()
	if withNamespace {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "NAME\tTYPE\tREADY\tREASON\tCA SUBJECT\tCA EXPIRES\tWAITING CSRS")
	for _, v := range views {
		ready, reason := "Unknown", "<none>"
		if cond := readyCondition(v.Status); cond != nil {
			ready, reason = string(cond.Status), cond.Reason
		}
		subject, expires := "<none>", "<none>"
		if ca := v.Status.CA; ca != nil {
			subject = ca.Subject
			expires = ca.NotAfter.UTC().Format(timeFormat) + " (" + relative(ca.NotAfter.Time) + ")"
		}
		count := "?"
		if waiting != nil {
			count = strconv.Itoa(waiting[v.Spec.SignerName])
		}
		if withNamespace {
			fmt.Fprintf(tw, "%s\t", v.Namespace)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Spec.Type, ready, reason, subject, expires, count)
	}
}

// relative says how far t is from now: "in 9y" or "2d ago".
func relative(t time.Time) string {
	d := t.Sub(now())
	if d >= 0 {
		return "in " + duration.HumanDuration(d)
	}
	return duration.HumanDuration(-d) + " ago"
}

// csrState is where a CSR that has no certificate yet stands.
type csrState struct {
	// Phase is Pending (not approved), Approved, Failed or Denied.
	Phase   string
	Reason  string
	Message string
}

func (s csrState) waiting() bool { return s.Phase == "Pending" || s.Phase == "Approved" }

// csrStateOf classifies csr; an issued CSR has the zero csrState.
func csrStateOf(csr *certificatesv1.CertificateSigningRequest) csrState {
	if len(csr.Status.Certificate) > 0 {
		return csrState{}
	}
	approved := false
	for _, c := range csr.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.CertificateDenied:
			return csrState{Phase: "Denied", Reason: c.Reason, Message: c.Message}
		case certificatesv1.CertificateFailed:
			return csrState{Phase: "Failed", Reason: c.Reason, Message: c.Message}
		case certificatesv1.CertificateApproved:
			approved = true
		}
	}
	if approved {
		return csrState{Phase: "Approved"}
	}
	return csrState{Phase: "Pending", Reason: wire.ReasonWaitingApproval,
		Message: "approve it with: kubectl certificate approve " + csr.Name}
}
