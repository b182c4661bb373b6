package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/wire"
)

func newSignCommand(streams genericiooptions.IOStreams, newClients ClientsFunc) *cobra.Command {
	o := &manifestFlags{}
	cmd := &cobra.Command{
		Use:   "sign -f CERTIFICATE.yaml [--out-dir DIR]",
		Short: "Generate a key and get it signed in one round trip through the sign subresource",
		Long: `Generate a private key from a cert-manager Certificate manifest (the same
fields as "create csr") and have signet sign it at once through the
signers/<issuer>/sign (Issuer) or clustersigners/<issuer>/sign (ClusterIssuer)
subresource. Permission to create that subresource is the approval: no CSR is
created and nothing is stored.

Writes <out-dir>/tls.key (mode 0600), tls.crt (the certificate and any
intermediates) and ca.crt (the CA to trust it with). Errors from the API,
such as 403 Forbidden, are shown as the API server gave them.`,
		Example: `  kubectl signet sign -f certificate.yaml --out-dir ./certs
  openssl verify -CAfile certs/ca.crt certs/tls.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSign(cmd.Context(), o, streams, newClients)
		},
	}
	o.add(cmd)
	return cmd
}

func runSign(ctx context.Context, o *manifestFlags, streams genericiooptions.IOStreams, newClients ClientsFunc) error {
	req, err := o.read(streams.In)
	if err != nil {
		return err
	}
	c, err := newClients()
	if err != nil {
		return err
	}
	ns, err := requestNamespace(req, c)
	if err != nil {
		return err
	}
	out := outputDir{dir: o.outDir, force: o.force}
	if err := out.prepare(keyFile, certFile, caFile); err != nil {
		return err
	}
	key, keyPEM, pkcs10, err := newKeyAndRequest(req)
	if err != nil {
		return err
	}

	body := BuildSigningRequest(req, pkcs10)
	var res *certmanagerv1alpha1.SigningRequest
	if req.Issuer.Kind == wire.KindClusterIssuer {
		res, err = c.Signet.CertManagerV1alpha1().ClusterSigners().Sign(ctx, req.Issuer.Name, body, metav1.CreateOptions{})
	} else {
		res, err = c.Signet.CertManagerV1alpha1().Signers(ns).Sign(ctx, req.Issuer.Name, body, metav1.CreateOptions{})
	}
	if err != nil {
		return signError(err, req, ns)
	}
	if len(res.Status.Certificate) == 0 {
		return fmt.Errorf("%s returned no certificate", IssuerString(req.Issuer, ns))
	}
	if err := checkCertificateKey(res.Status.Certificate, key); err != nil {
		return fmt.Errorf("%s: %w", IssuerString(req.Issuer, ns), err)
	}

	written := []string{}
	for _, f := range []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{keyFile, keyPEM, 0o600},
		{certFile, res.Status.Certificate, 0o644},
		{caFile, res.Status.CA, 0o644},
	} {
		if len(f.data) == 0 {
			continue
		}
		p, err := out.write(f.name, f.data, f.perm)
		if err != nil {
			return err
		}
		written = append(written, p)
	}
	fmt.Fprintf(streams.Out, "Certificate signed by %s", IssuerString(req.Issuer, ns))
	if !res.Status.NotAfter.IsZero() {
		fmt.Fprintf(streams.Out, ", valid until %s", res.Status.NotAfter.UTC().Format(timeFormat))
	}
	fmt.Fprintln(streams.Out)
	for _, p := range written {
		fmt.Fprintf(streams.Out, "Wrote %s\n", p)
	}
	if len(res.Status.CA) == 0 {
		fmt.Fprintf(streams.ErrOut, "Warning: the response carried no CA certificate: %s not written\n", caFile)
	}
	return nil
}

// signError returns the API's error as it is, with a hint when the 404 is
// for the subresource itself rather than the signer (an older signet).
func signError(err error, req *CertificateRequest, ns string) error {
	if isMissingAPI(err) {
		return fmt.Errorf("%w (the server has no sign subresource for %s: does this signet serve signers/sign?)", err, IssuerString(req.Issuer, ns))
	}
	return err
}

// signerAPIError adds a hint to a 404 for the signers API itself.
func signerAPIError(err error) error {
	if isMissingAPI(err) {
		return fmt.Errorf("%w (is signet installed? the server does not serve signers in cert-manager.io/v1alpha1)", err)
	}
	return err
}

// isMissingAPI tells a 404 for a path the server does not serve from one
// for an object that does not exist, which names the object.
func isMissingAPI(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d == nil || d.Name == ""
}
