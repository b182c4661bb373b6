package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/pkg/wire"
)

func newDescribeCommand(streams genericiooptions.IOStreams, newClients ClientsFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe (signer NAME [-n NAMESPACE] | clustersigner NAME)",
		Short: "Show one signer: its Ready condition, its CA and the CSRs waiting on it",
	}
	long := `Show a signer's Ready condition and message, its CA (subject, issuer, serial
number, validity, SHA-256 fingerprint, key algorithm), and every
CertificateSigningRequest for its signer name that has no certificate yet,
with what it waits for: approval (WaitingApproval), or for an approved one the
latest event signet wrote about it; a failed or denied one shows the
condition's reason.`
	cmd.AddCommand(
		&cobra.Command{
			Use:     "signer NAME",
			Aliases: []string{"signers"},
			Short:   "Describe the signer of a cert-manager Issuer",
			Long:    long,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newClients()
				if err != nil {
					return err
				}
				s, err := c.Signet.CertManagerV1alpha1().Signers(c.Namespace).Get(cmd.Context(), args[0], metav1.GetOptions{})
				if err != nil {
					return signerAPIError(err)
				}
				return describeSigner(cmd.Context(), streams.Out, c.Kube, fromSigner(s))
			},
		},
		&cobra.Command{
			Use:     "clustersigner NAME",
			Aliases: []string{"clustersigners"},
			Short:   "Describe the signer of a cert-manager ClusterIssuer",
			Long:    long,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newClients()
				if err != nil {
					return err
				}
				s, err := c.Signet.CertManagerV1alpha1().ClusterSigners().Get(cmd.Context(), args[0], metav1.GetOptions{})
				if err != nil {
					return signerAPIError(err)
				}
				return describeSigner(cmd.Context(), streams.Out, c.Kube, fromClusterSigner(s))
			},
		},
	)
	return cmd
}

// waitingCSR is a CSR with no certificate and why it has none.
type waitingCSR struct {
	CSR   *certificatesv1.CertificateSigningRequest
	State csrState
}

func describeSigner(ctx context.Context, out io.Writer, kube kubernetes.Interface, v signerView) error {
	var buf bytes.Buffer
	if err := writeDescription(ctx, &buf, kube, v); err != nil {
		return err
	}
	// Padding a section title ("CA:") keeps its fields aligned with the rest,
	// but leaves trailing blanks.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if _, err := io.WriteString(out, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n"))); err != nil {
			return err
		}
	}
	return nil
}

func writeDescription(ctx context.Context, w io.Writer, kube kubernetes.Interface, v signerView) error {
	tw := printers.GetNewTabWriter(w)
	field := func(indent int, name, format string, args ...interface{}) {
		fmt.Fprintf(tw, "%*s%s:\t%s\n", indent, "", name, fmt.Sprintf(format, args...))
	}
	field(0, "Name", "%s", v.Name)
	if v.Namespace != "" {
		field(0, "Namespace", "%s", v.Namespace)
	}
	field(0, "Kind", "%s", v.Kind)
	field(0, "Signer Name", "%s", v.Spec.SignerName)
	ref := v.Spec.IssuerRef
	if v.Namespace != "" {
		field(0, "Issuer", "%s %s/%s (%s)", ref.Kind, v.Namespace, ref.Name, ref.Group)
	} else {
		field(0, "Issuer", "%s %s (%s)", ref.Kind, ref.Name, ref.Group)
	}
	field(0, "Type", "%s", v.Spec.Type)
	if !v.Created.IsZero() {
		field(0, "Created", "%s (%s)", v.Created.UTC().Format(timeFormat), relative(v.Created.Time))
	}
	if cond := readyCondition(v.Status); cond != nil {
		field(0, "Ready", "%s", cond.Status)
		field(2, "Reason", "%s", cond.Reason)
		field(2, "Message", "%s", cond.Message)
		field(2, "Since", "%s (%s)", cond.LastTransitionTime.UTC().Format(timeFormat), relative(cond.LastTransitionTime.Time))
	} else {
		field(0, "Ready", "Unknown (no Ready condition yet)")
	}
	if ca := v.Status.CA; ca != nil {
		fmt.Fprintln(tw, "CA:\t")
		field(2, "Subject", "%s", ca.Subject)
		field(2, "Issuer", "%s", ca.Issuer)
		field(2, "Serial Number", "%s", ca.SerialNumber)
		field(2, "Not Before", "%s", ca.NotBefore.UTC().Format(timeFormat))
		field(2, "Not After", "%s (%s)", ca.NotAfter.UTC().Format(timeFormat), relative(ca.NotAfter.Time))
		field(2, "Fingerprint", "SHA256 %s", ca.FingerprintSHA256)
		field(2, "Key Algorithm", "%s", ca.KeyAlgorithm)
	} else {
		field(0, "CA", "<none>")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	waiting, err := waitingCSRsFor(ctx, kube, v.Spec.SignerName)
	if err != nil {
		fmt.Fprintf(w, "CSRs not signed yet:\t<unknown: %v>\n", err)
		return nil
	}
	if len(waiting) == 0 {
		fmt.Fprintln(w, "CSRs not signed yet: <none>")
		return nil
	}
	fmt.Fprintf(w, "CSRs not signed yet: %d\n", len(waiting))
	tw = printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "  NAME\tAGE\tREQUESTOR\tSTATE\tREASON\tMESSAGE")
	for _, p := range waiting {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.CSR.Name, age(p.CSR.CreationTimestamp),
			orNone(p.CSR.Spec.Username), p.State.Phase, orNone(p.State.Reason), p.State.Message)
	}
	return tw.Flush()
}

// waitingCSRsFor lists the CSRs for signerName that have no certificate,
// oldest first, each with why it waits. For an approved one that is the
// latest event signet wrote about it.
func waitingCSRsFor(ctx context.Context, kube kubernetes.Interface, signerName string) ([]waitingCSR, error) {
	csrs, err := listCSRsFor(ctx, kube, signerName)
	if err != nil {
		return nil, err
	}
	var out []waitingCSR
	for i := range csrs {
		csr := &csrs[i]
		st := csrStateOf(csr)
		if st.Phase == "" {
			continue
		}
		if st.Phase == "Approved" {
			st.Reason, st.Message = approvedWaitReason(ctx, kube, csr)
		}
		out = append(out, waitingCSR{CSR: csr, State: st})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].CSR.CreationTimestamp.Before(&out[j].CSR.CreationTimestamp)
	})
	return out, nil
}

// approvedWaitReason is why an approved CSR has no certificate yet, from
// the latest event signet wrote about it.
func approvedWaitReason(ctx context.Context, kube kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest) (reason, message string) {
	ev, err := latestSignetEvent(ctx, kube, csr)
	switch {
	case err != nil:
		return "<unknown>", fmt.Sprintf("cannot read events: %v", err)
	case ev == nil:
		return "<none>", "no event from signet yet (is signet running?)"
	case ev.Reason == wire.ReasonWaitingApproval:
		// Written before the approval: signet has not acted since.
		return "<none>", "approved; signet has not acted on it since"
	}
	return ev.Reason, ev.Message
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now().Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
