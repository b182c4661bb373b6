package integration

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
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
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/pkg/controller/podcertificates"
	"github.com/signet-dev/signet/pkg/controller/trustbundles"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/test/framework"
)

// The one node the pod certificate tests bind their pods to; registered by
// its kubelet on first use.
var testNode struct {
	once    sync.Once
	kubelet *framework.Kubelet
	err     error
}

func kubelet(t *testing.T) *framework.Kubelet {
	t.Helper()
	testNode.once.Do(func() {
		testNode.kubelet, testNode.err = env.cp.RegisterNode(context.Background(), "pods-node-1")
	})
	if testNode.err != nil {
		t.Fatal(testNode.err)
	}
	return testNode.kubelet
}

// createServiceAccount creates ServiceAccount ns/name if it does not exist.
func createServiceAccount(t *testing.T, ns, name string) {
	t.Helper()
	_, err := env.kube.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// allowReference lets ServiceAccount saNS/sa reference the Issuer
// issuerNS/issuer, with a Role and RoleBinding in the issuer's namespace.
func allowReference(t *testing.T, saNS, sa, issuerNS, issuer string) {
	t.Helper()
	ctx := context.Background()
	name := "reference-" + issuer + "-" + saNS + "-" + sa
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: issuerNS, Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"cert-manager.io"}, Resources: []string{"signers"},
			ResourceNames: []string{issuer}, Verbs: []string{"reference"}}},
	}
	if _, err := env.kube.RbacV1().Roles(issuerNS).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: issuerNS, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: saNS, Name: sa}},
	}
	if _, err := env.kube.RbacV1().RoleBindings(issuerNS).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// allowClusterReference lets ServiceAccount ns/sa reference ClusterIssuer issuer.
func allowClusterReference(t *testing.T, ns, sa, issuer string) {
	t.Helper()
	ctx := context.Background()
	name := "reference-" + issuer + "-" + ns + "-" + sa
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"cert-manager.io"}, Resources: []string{"clustersigners"},
			ResourceNames: []string{issuer}, Verbs: []string{"reference"}}},
	}
	if _, err := env.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}},
	}
	if _, err := env.kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// createCertPod creates a pod bound to the test node, running as
// ServiceAccount sa (created if missing), with one projected volume holding
// source (a podCertificate) and the ClusterTrustBundles signet publishes for
// the same signer: the manifest the README shows.
func createCertPod(t *testing.T, ns, name, sa string, source corev1.PodCertificateProjection) *corev1.Pod {
	t.Helper()
	createServiceAccount(t, ns, sa)
	source.CredentialBundlePath = "credentialbundle.pem"
	signer := source.SignerName
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:                     kubelet(t).NodeName,
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/pause:3.10",
				VolumeMounts: []corev1.VolumeMount{{Name: "identity", MountPath: "/var/run/identity", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "identity", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{
					{PodCertificate: &source},
					{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{
						SignerName:    &signer,
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{trustbundles.LabelManagedBy: trustbundles.ManagedBy}},
						Path:          "ca.pem",
					}},
				},
			}}}},
		},
	}
	created, err := env.kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// requestPodCertificate creates the pod's PodCertificateRequest as its node's
// kubelet, retrying while the Node authorizer's graph and NodeRestriction's
// caches have not seen the new pod yet.
func requestPodCertificate(t *testing.T, pod *corev1.Pod) (crypto.Signer, *certificatesv1.PodCertificateRequest) {
	t.Helper()
	var source *corev1.PodCertificateProjection
	for _, s := range pod.Spec.Volumes[0].Projected.Sources {
		if s.PodCertificate != nil {
			source = s.PodCertificate
		}
	}
	var (
		key     crypto.Signer
		pcr     *certificatesv1.PodCertificateRequest
		lastErr error
	)
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		key, pcr, lastErr = kubelet(t).RequestPodCertificate(ctx, pod, source)
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("requesting a pod certificate for %s/%s: %v", pod.Namespace, pod.Name, lastErr)
	}
	return key, pcr
}

// waitFinished waits for the request's Issued, Denied or Failed condition.
func waitFinished(t *testing.T, ns, name string) *certificatesv1.PodCertificateRequest {
	t.Helper()
	var pcr *certificatesv1.PodCertificateRequest
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		pcr, err = env.kube.CertificatesV1().PodCertificateRequests(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(pcr.Status.Conditions) > 0, nil
	})
	if err != nil {
		t.Fatalf("PodCertificateRequest %s/%s not finished: %v\n%s", ns, name, err, pcrEvents(t, ns, name))
	}
	return pcr
}

// pcrEvents lists the events on a PodCertificateRequest.
func pcrEvents(t *testing.T, ns, name string) string {
	t.Helper()
	evs, err := env.kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=PodCertificateRequest,involvedObject.name=" + name,
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

// podTrustBundle is what a clusterTrustBundle projected volume with
// signerName and signet's label gives a pod: the anchors of every bundle
// kube-apiserver lists for that signer and label, as kubelet lists them.
func podTrustBundle(t *testing.T, signerName string) []*x509.Certificate {
	t.Helper()
	list, err := env.kube.CertificatesV1().ClusterTrustBundles().List(context.Background(), metav1.ListOptions{
		FieldSelector: "spec.signerName=" + signerName,
		LabelSelector: trustbundles.LabelManagedBy + "=" + trustbundles.ManagedBy,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for _, b := range list.Items {
		out = append(out, trustbundles.ParseBundle(b.Spec.TrustBundle)...)
	}
	return out
}

// waitTrustBundle waits until the pod's view of signerName's trust bundle
// holds exactly the given CAs, in any order.
func waitTrustBundle(t *testing.T, signerName string, want ...*x509.Certificate) []*x509.Certificate {
	t.Helper()
	var got []*x509.Certificate
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got = podTrustBundle(t, signerName)
		if len(got) != len(want) {
			return false, nil
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g.Equal(w)
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		var names []string
		for _, c := range got {
			names = append(names, c.Subject.CommonName)
		}
		t.Fatalf("trust bundle of %s holds %v, want %d CAs", signerName, names, len(want))
	}
	return got
}

// issuedPodCertificate checks an Issued request as kubelet would use it, and
// more: the chain verifies against the published trust bundle for client and
// server authentication, the leaf is for the pod's key and names the pod's
// SPIFFE ID alone, status times are the leaf's, and the lifetime and refresh
// point are signet's rules.
func issuedPodCertificate(t *testing.T, pcr *certificatesv1.PodCertificateRequest, key crypto.Signer, anchors []*x509.Certificate, lifetime time.Duration) []*x509.Certificate {
	t.Helper()
	if len(pcr.Status.Conditions) != 1 || pcr.Status.Conditions[0].Type != certificatesv1.PodCertificateRequestConditionTypeIssued {
		t.Fatalf("PodCertificateRequest %s/%s conditions %+v, want Issued\n%s", pcr.Namespace, pcr.Name, pcr.Status.Conditions, pcrEvents(t, pcr.Namespace, pcr.Name))
	}
	chain, err := signers.ParseCertificates([]byte(pcr.Status.CertificateChain))
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("the chain does not verify against the published trust bundle: %v", err)
		}
	}
	if !signers.PublicKeysEqual(leaf.PublicKey, key.Public()) {
		t.Error("the certificate is not for the key kubelet generated")
	}
	want := podcertificates.SPIFFEID("cluster.local", pcr.Namespace, pcr.Spec.ServiceAccountName).String()
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("names: URIs %v DNS %v IPs %v emails %v, want %s alone", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses, want)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("isCA %v keyUsage %v, want a leaf with digital signature", leaf.IsCA, leaf.KeyUsage)
	}
	st := pcr.Status
	if st.NotBefore == nil || st.NotAfter == nil || st.BeginRefreshAt == nil {
		t.Fatalf("status times %+v", st)
	}
	if !st.NotBefore.Time.Equal(leaf.NotBefore) || !st.NotAfter.Time.Equal(leaf.NotAfter) {
		t.Errorf("status [%s, %s], leaf [%s, %s]", st.NotBefore, st.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != lifetime {
		t.Errorf("lifetime %s, want %s", got, lifetime)
	}
	if d := time.Since(leaf.NotBefore); d < 0 || d > 2*time.Minute {
		t.Errorf("NotBefore %s is %s ago, want about a minute", leaf.NotBefore, d)
	}
	if wantAt := podcertificates.BeginRefreshAt(leaf.NotBefore, leaf.NotAfter); !st.BeginRefreshAt.Time.Equal(wantAt) {
		t.Errorf("beginRefreshAt %s, want %s (two thirds of the lifetime)", st.BeginRefreshAt, wantAt)
	}
	return chain
}
