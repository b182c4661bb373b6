package app

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/wire"
)

// manifestFlags is the -f flag every request command takes.
type manifestFlags struct {
	filename string
	outDir   string
	force    bool
}

func (m *manifestFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&m.filename, "filename", "f", "", "cert-manager Certificate manifest (YAML or JSON); - reads standard input")
	cmd.Flags().StringVar(&m.outDir, "out-dir", ".", "directory to write tls.key, tls.crt and ca.crt into (created if missing)")
	cmd.Flags().BoolVar(&m.force, "force", false, "overwrite tls.key, tls.crt and ca.crt if they exist")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
}

func (m *manifestFlags) read(in io.Reader) (*CertificateRequest, error) {
	if m.filename == "-" {
		return ReadCertificateManifest(in, "standard input")
	}
	f, err := os.Open(m.filename)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadCertificateManifest(f, m.filename)
}

func newCreateCommand(streams genericiooptions.IOStreams, newClients ClientsFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a CertificateSigningRequest from a cert-manager Certificate manifest",
	}
	cmd.AddCommand(newCreateCSRCommand(streams, newClients))
	return cmd
}

type createCSROptions struct {
	manifestFlags
	name    string
	wait    bool
	timeout time.Duration
}

func newCreateCSRCommand(streams genericiooptions.IOStreams, newClients ClientsFunc) *cobra.Command {
	o := &createCSROptions{}
	cmd := &cobra.Command{
		Use:     "csr -f CERTIFICATE.yaml [--name NAME] [--wait [--timeout 5m]] [--out-dir DIR]",
		Aliases: []string{"certificatesigningrequest"},
		Short:   "Generate a key and create a CertificateSigningRequest for a cert-manager Issuer",
		Long: `Generate a private key and a Kubernetes CertificateSigningRequest from a
cert-manager Certificate manifest, for the Issuer or ClusterIssuer in its
spec.issuerRef, as cmctl's "experimental create certificatesigningrequest" does.

From the Certificate it reads commonName, dnsNames, ipAddresses, uris,
emailAddresses, subject, duration (the experimental.cert-manager.io/request-duration
annotation and spec.expirationSeconds), usages (default: digital signature,
key encipherment), isCA (experimental.cert-manager.io/request-is-ca) and
privateKey (RSA 2048/3072/4096, ECDSA 256/384/521 or Ed25519; PKCS1 or PKCS8;
Ed25519 keys are always PKCS8). Its namespace is metadata.namespace, else
--namespace or the kubeconfig's. The signer name is
issuers.cert-manager.io/<namespace>.<issuer> or clusterissuers.cert-manager.io/<issuer>.

The key is written to <out-dir>/tls.key (mode 0600) before the request is
created, so it is never lost. The CSR must then be approved by someone
allowed to (kubectl certificate approve NAME); this command never approves.
With --wait it waits for the certificate and writes tls.crt, and ca.crt when
signet adds the CA to the CSR (signet --write-ca-annotation).

SelfSigned issuers are not supported: they need the request's private key
in a Secret (experimental.cert-manager.io/private-key-secret-name), which
cmctl does not set either.`,
		Example: `  # Create a CSR named after the Certificate (plus a random suffix) and wait for it
  kubectl signet create csr -f certificate.yaml --wait --out-dir ./certs

  # In another shell, as an approver:
  kubectl certificate approve <name>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), streams, newClients)
		},
	}
	o.manifestFlags.add(cmd)
	cmd.Flags().StringVar(&o.name, "name", "", "name of the CertificateSigningRequest (default: the Certificate's name and a random suffix)")
	cmd.Flags().BoolVarP(&o.wait, "wait", "w", false, "wait until the CSR is signed and write tls.crt (and ca.crt)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

func (o *createCSROptions) run(ctx context.Context, streams genericiooptions.IOStreams, newClients ClientsFunc) error {
	if o.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
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
	files := []string{keyFile}
	if o.wait {
		files = append(files, certFile, caFile)
	}
	if err := out.prepare(files...); err != nil {
		return err
	}
	if err := checkSigner(ctx, c, req, ns, streams.ErrOut); err != nil {
		return err
	}

	key, keyPEM, pkcs10, err := newKeyAndRequest(req)
	if err != nil {
		return err
	}
	keyPath, err := out.write(keyFile, keyPEM, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Private key (%s, %s) written to %s\n", req.Key, keyEncodingOf(req.Key), keyPath)

	csrs := c.Kube.CertificatesV1().CertificateSigningRequests()
	created, err := csrs.Create(ctx, BuildCSR(req, ns, o.name, pkcs10), metav1.CreateOptions{})
	if err != nil {
		// Nothing refers to the key yet: don't leave it behind.
		os.Remove(keyPath)
		return fmt.Errorf("creating the CertificateSigningRequest: %w", err)
	}
	fmt.Fprintf(streams.Out, "certificatesigningrequest.certificates.k8s.io/%s created for %s (signerName %s)\n",
		created.Name, IssuerString(req.Issuer, ns), created.Spec.SignerName)
	fetch := fmt.Sprintf("kubectl get csr %s -o jsonpath='{.status.certificate}' | base64 -d > %s", created.Name, out.path(certFile))
	if !o.wait {
		fmt.Fprintf(streams.Out, "Once it is approved (kubectl certificate approve %s) and signed, fetch the certificate with:\n  %s\n", created.Name, fetch)
		return nil
	}

	fmt.Fprintf(streams.Out, "Waiting up to %s for %s to be approved and signed...\n", o.timeout, created.Name)
	issued, err := waitForCertificate(ctx, c.Kube, created, o.timeout)
	var stillWaiting *stillWaitingError
	if errors.As(err, &stillWaiting) {
		return fmt.Errorf("%w\nThe private key is in %s; once the CSR is signed, fetch the certificate with:\n  %s", err, keyPath, fetch)
	}
	if err != nil {
		return err
	}
	if err := checkCertificateKey(issued.Status.Certificate, key); err != nil {
		return fmt.Errorf("CertificateSigningRequest %s: %w", issued.Name, err)
	}
	certPath, err := out.write(certFile, issued.Status.Certificate, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Certificate written to %s\n", certPath)
	caPEM, err := caFromAnnotation(issued)
	if err != nil {
		return err
	}
	if caPEM == nil {
		fmt.Fprintf(streams.Out, "No %s annotation on the CSR (signet writes it with --write-ca-annotation): %s not written\n", wire.AnnotationCA, caFile)
		return nil
	}
	caPath, err := out.write(caFile, caPEM, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "CA certificate written to %s\n", caPath)
	return nil
}

func keyEncodingOf(k KeySpec) KeyEncoding {
	if k.Algorithm == Ed25519 {
		return PKCS8
	}
	return k.Encoding
}

// newKeyAndRequest generates the key and the PKCS#10 request it signs.
func newKeyAndRequest(req *CertificateRequest) (crypto.Signer, []byte, []byte, error) {
	key, err := GenerateKey(req.Key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating a %s key: %w", req.Key, err)
	}
	keyPEM, err := EncodeKey(key, req.Key.Encoding)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encoding the private key: %w", err)
	}
	pkcs10, err := BuildPKCS10(req, key)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, keyPEM, pkcs10, nil
}

// checkSigner looks at the signer before anything is created: a SelfSigned
// one cannot sign such a request at all; a missing or unready one is worth a
// warning, since the CSR would only wait. Not being allowed to read signers
// is no reason to stop.
func checkSigner(ctx context.Context, c *Clients, req *CertificateRequest, ns string, warn io.Writer) error {
	issuer := IssuerString(req.Issuer, ns)
	var (
		typ    certmanagerv1alpha1.SignerType
		status certmanagerv1alpha1.SignerStatus
		err    error
	)
	if req.Issuer.Kind == wire.KindClusterIssuer {
		var s *certmanagerv1alpha1.ClusterSigner
		if s, err = c.Signet.CertManagerV1alpha1().ClusterSigners().Get(ctx, req.Issuer.Name, metav1.GetOptions{}); err == nil {
			typ, status = s.Spec.Type, s.Status
		}
	} else {
		var s *certmanagerv1alpha1.Signer
		if s, err = c.Signet.CertManagerV1alpha1().Signers(ns).Get(ctx, req.Issuer.Name, metav1.GetOptions{}); err == nil {
			typ, status = s.Spec.Type, s.Status
		}
	}
	switch {
	case isMissingAPI(err):
		fmt.Fprintf(warn, "Warning: cannot check the signer for %s: the server does not serve signers in cert-manager.io/v1alpha1 (is signet installed?)\n", issuer)
		return nil
	case apierrors.IsNotFound(err):
		fmt.Fprintf(warn, "Warning: signet has no signer for %s (%v); the request will wait until the issuer exists\n", issuer, err)
		return nil
	case err != nil:
		return nil
	case typ == certmanagerv1alpha1.SignerTypeSelfSigned:
		return fmt.Errorf("%s is a SelfSigned issuer: kubectl signet cannot request from it (it needs the private key in a Secret named by %s, which cmctl does not support either)",
			issuer, wire.AnnotationPrivateKeySecretName)
	}
	if cond := readyCondition(status); cond == nil || cond.Status != metav1.ConditionTrue {
		reason, message := "Unknown", "no Ready condition yet"
		if cond != nil {
			reason, message = cond.Reason, cond.Message
		}
		fmt.Fprintf(warn, "Warning: the signer for %s is not ready (%s: %s); the request will wait until it is\n", issuer, reason, message)
	}
	return nil
}

// waitForCertificate watches csr until it has a certificate, fails, is
// denied, or timeout passes. It falls back to polling where the user may
// get but not watch CSRs.
func waitForCertificate(parent context.Context, kube kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest, timeout time.Duration) (*certificatesv1.CertificateSigningRequest, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	w := csrWaiter{csrs: kube.CertificatesV1().CertificateSigningRequests(), current: csr, canWatch: true}
	err := w.run(ctx)
	if err == nil {
		return w.current, nil
	}
	if ctx.Err() == nil {
		return nil, err
	}
	// Say why it is still waiting, with a context that has time left.
	why := waitingReason(context.WithoutCancel(parent), kube, w.current)
	if parent.Err() != nil {
		return nil, &stillWaitingError{fmt.Sprintf("interrupted while waiting for CertificateSigningRequest %s: %s", csr.Name, why)}
	}
	return nil, &stillWaitingError{fmt.Sprintf("timed out after %s waiting for CertificateSigningRequest %s to be signed: %s", timeout, csr.Name, why)}
}

// stillWaitingError ends a wait for a CSR that may still be signed later.
type stillWaitingError struct{ message string }

func (e *stillWaitingError) Error() string { return e.message }

// waitingReason says what csr waits for, with the latest event signet wrote
// about it.
func waitingReason(ctx context.Context, kube kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var why string
	if isApproved(csr) {
		why = "it is approved but not signed yet"
	} else {
		why = fmt.Sprintf("it is not approved yet (approve it with: kubectl certificate approve %s)", csr.Name)
	}
	ev, err := latestSignetEvent(ctx, kube, csr)
	switch {
	case err != nil:
		return why + fmt.Sprintf("; signet's events on it could not be read: %v", err)
	case ev == nil:
		return why + "; signet has written no event about it (is signet running, and is the signer name right?)"
	}
	return why + fmt.Sprintf("; latest event from signet: %s %s: %s", ev.Type, ev.Reason, ev.Message)
}

// csrOutcome is nil while csr waits, errCertificateIssued once it has a
// certificate, and an error naming the condition once it failed or was denied.
func csrOutcome(csr *certificatesv1.CertificateSigningRequest) error {
	if len(csr.Status.Certificate) > 0 {
		return errCertificateIssued
	}
	for _, c := range csr.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.CertificateDenied:
			return fmt.Errorf("CertificateSigningRequest %s was denied: %s: %s", csr.Name, c.Reason, c.Message)
		case certificatesv1.CertificateFailed:
			return fmt.Errorf("CertificateSigningRequest %s failed: %s: %s", csr.Name, c.Reason, c.Message)
		}
	}
	return nil
}

var errCertificateIssued = errors.New("certificate issued")

func isApproved(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
