package integration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
)

// csrRequest describes a CSR to create.
type csrRequest struct {
	signerName  string
	key         crypto.Signer
	keyType     testpki.KeyType
	commonName  string
	dnsNames    []string
	ips         []net.IP
	uris        []*url.URL
	emails      []string
	usages      []certificatesv1.KeyUsage
	expiration  *int32
	annotations map[string]string
	// rawRequest replaces the PKCS#10 PEM built from the fields above.
	rawRequest []byte
	// as creates the CSR as this user (who gets RBAC to create CSRs); empty: admin.
	as string
}

func pkcs10(t *testing.T, r *csrRequest) []byte {
	t.Helper()
	if r.rawRequest != nil {
		return r.rawRequest
	}
	if r.key == nil {
		kt := r.keyType
		if kt == "" {
			kt = testpki.ECDSAP256
		}
		k, err := testpki.NewKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		r.key = k
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: r.commonName, Organization: []string{"signet-tests"}},
		DNSNames:       r.dnsNames,
		IPAddresses:    r.ips,
		URIs:           r.uris,
		EmailAddresses: r.emails,
	}, r.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var csrCounter int

// createCSR creates the CSR (named uniquely after the test) and returns its name.
func createCSR(t *testing.T, r *csrRequest) string {
	t.Helper()
	name, err := tryCreateCSR(t, r)
	if err != nil {
		t.Fatalf("creating CSR %s: %v", name, err)
	}
	return name
}

func tryCreateCSR(t *testing.T, r *csrRequest) (string, error) {
	t.Helper()
	csrCounter++
	name := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), csrCounter)
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	name = strings.Trim(name, "-.")
	usages := r.usages
	if usages == nil {
		usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: r.annotations},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pkcs10(t, r),
			SignerName:        r.signerName,
			Usages:            usages,
			ExpirationSeconds: r.expiration,
		},
	}
	client := env.kube
	if r.as != "" {
		allowCSRCreate(t, r.as)
		client = kubernetes.NewForConfigOrDie(env.cp.UserConfig(r.as))
	}
	_, err := client.CertificatesV1().CertificateSigningRequests().Create(context.Background(), csr, metav1.CreateOptions{})
	return name, err
}

// allowCSRCreate lets user create and read CSRs (idempotent).
func allowCSRCreate(t *testing.T, user string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-requester"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "list", "watch"}}},
	}
	if _, err := env.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-requester-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "csr-requester"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}
	if _, err := env.kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// setCondition adds an Approved or Denied condition, as kubectl certificate approve/deny does.
func setCondition(t *testing.T, name string, typ certificatesv1.RequestConditionType) {
	t.Helper()
	if err := trySetCondition(name, typ, t.Name()); err != nil {
		t.Fatalf("setting %s on %s: %v", typ, name, err)
	}
}

// trySetCondition is setCondition for goroutines other than the test's.
func trySetCondition(name string, typ certificatesv1.RequestConditionType, by string) error {
	ctx := context.Background()
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: typ, Status: corev1.ConditionTrue, Reason: "SignetTest", Message: "set by " + by,
		})
		_, err = env.kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, csr, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func approve(t *testing.T, name string) {
	t.Helper()
	setCondition(t, name, certificatesv1.CertificateApproved)
}

// outcome is where a CSR ended: a certificate or a Failed condition.
type outcome struct {
	csr     *certificatesv1.CertificateSigningRequest
	certs   []*x509.Certificate
	failed  *certificatesv1.CertificateSigningRequestCondition
	timeout bool
}

// waitOutcome waits up to d for a certificate or a Failed condition.
func waitOutcome(t *testing.T, name string, d time.Duration) outcome {
	t.Helper()
	var o outcome
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		o.csr = csr
		for i, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateFailed {
				o.failed = &csr.Status.Conditions[i]
				return true, nil
			}
		}
		return len(csr.Status.Certificate) > 0, nil
	})
	if err != nil {
		o.timeout = true
		return o
	}
	if len(o.csr.Status.Certificate) > 0 {
		rest := o.csr.Status.Certificate
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("CSR %s: status.certificate does not parse: %v", name, err)
			}
			o.certs = append(o.certs, c)
		}
		if len(o.certs) == 0 {
			t.Fatalf("CSR %s: status.certificate has no certificate", name)
		}
	}
	return o
}

func mustIssue(t *testing.T, name string) outcome {
	t.Helper()
	o := waitOutcome(t, name, 30*time.Second)
	if o.timeout || o.failed != nil {
		t.Fatalf("CSR %s not issued: failed=%+v timeout=%v\n%s", name, o.failed, o.timeout, eventsFor(t, name))
	}
	return o
}

// eventsFor lists the events on a CSR, for failure messages and assertions.
func eventsFor(t *testing.T, name string) string {
	t.Helper()
	evs, err := env.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=CertificateSigningRequest,involvedObject.name=" + name,
	})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range evs.Items {
		fmt.Fprintf(&b, "%s %s: %s\n", e.Type, e.Reason, e.Message)
	}
	return b.String()
}

// waitEvent waits for an event with reason on the CSR.
func waitEvent(t *testing.T, name, reason string) {
	t.Helper()
	eventually(t, "event "+reason+" on "+name, func() (bool, error) {
		return strings.Contains(eventsFor(t, name), " "+reason+":"), nil
	})
}

// opensslVerify checks the chain with the openssl command line. openssl is
// a documented requirement of the tests: without it the test fails (a skip
// here would silently drop the rest of the calling test).
func opensslVerify(t *testing.T, caPEM []byte, certPEM []byte) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed to verify certificates as a TLS peer would: %v", err)
	}
	dir := t.TempDir()
	caFile, certFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// Intermediates in the chain are untrusted: pass them as such.
	out, err := exec.Command("openssl", "verify", "-CAfile", caFile, "-untrusted", certFile, certFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify: %v\n%s", err, out)
	}
}

// goVerify checks the leaf against root with Go's verifier.
func goVerify(t *testing.T, root *x509.Certificate, certs []*x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("x509.Verify: %v", err)
	}
}

// certificateWrites records, from a watch on CSRs, the first certificate
// written to each tracked CSR and any later write that changes it: a CSR
// issued twice.
type certificateWrites struct {
	mu      sync.Mutex
	tracked map[string]bool
	first   map[string][]byte
	changed []string
	err     error // why the watch ended before the test did
}

// watchCertificates starts recording; the watch ends with ctx.
func watchCertificates(ctx context.Context, t *testing.T) *certificateWrites {
	t.Helper()
	w, err := env.kube.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	cw := &certificateWrites{tracked: map[string]bool{}, first: map[string][]byte{}}
	go func() {
		for e := range w.ResultChan() {
			if e.Type == watch.Error {
				cw.mu.Lock()
				cw.err = fmt.Errorf("watch error: %v", e.Object)
				cw.mu.Unlock()
				continue
			}
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			if ok && e.Type != watch.Deleted && len(csr.Status.Certificate) > 0 {
				cw.see(csr.Name, csr.Status.Certificate)
			}
		}
		cw.mu.Lock()
		if ctx.Err() == nil && cw.err == nil {
			cw.err = fmt.Errorf("watch closed by the server")
		}
		cw.mu.Unlock()
	}()
	return cw
}

// createTracked creates n CSRs for signerName, common names <prefix>-<i>,
// and tracks each. One requester key for all: the point is the
// controller, not keygen.
func (cw *certificateWrites) createTracked(t *testing.T, signerName, prefix string, n int) []string {
	t.Helper()
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = createCSR(t, &csrRequest{signerName: signerName, key: key, commonName: fmt.Sprintf("%s-%d", prefix, i)})
		cw.track(names[i])
	}
	return names
}

// track adds a CSR to record; call it before the CSR can be approved.
func (cw *certificateWrites) track(name string) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.tracked[name] = true
}

// see records cert as written to the CSR name.
func (cw *certificateWrites) see(name string, cert []byte) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !cw.tracked[name] {
		return
	}
	if prev, seen := cw.first[name]; !seen {
		cw.first[name] = cert
	} else if !bytes.Equal(prev, cert) {
		cw.changed = append(cw.changed, name)
	}
}

// confirmFromAPI lists the CSRs and records each of names' certificates as
// kube-apiserver has it now, so that a write the watch missed still counts;
// it returns how many of names have no certificate.
func (cw *certificateWrites) confirmFromAPI(ctx context.Context, t *testing.T, names []string) (missing int) {
	t.Helper()
	list, err := env.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*certificatesv1.CertificateSigningRequest{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	for _, name := range names {
		csr := byName[name]
		if csr == nil || len(csr.Status.Certificate) == 0 {
			missing++
			continue
		}
		cw.see(name, csr.Status.Certificate)
	}
	return missing
}

// issued is how many tracked CSRs have a certificate.
func (cw *certificateWrites) issued() int {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return len(cw.first)
}

func (cw *certificateWrites) changedNames() []string {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return append([]string(nil), cw.changed...)
}

func (cw *certificateWrites) watchErr() error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.err
}
