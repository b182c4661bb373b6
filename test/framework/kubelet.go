package framework

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
)

// Kubelet stands in for one node's kubelet towards kube-apiserver: it
// authenticates as system:node:<name> in group system:nodes, so that the
// Node authorizer and NodeRestriction (ControlPlaneOptions.NodeAuthorization)
// hold it to what a kubelet may do. It runs no pods; it makes the requests a
// kubelet makes.
type Kubelet struct {
	NodeName string
	NodeUID  types.UID
	// Client talks to kube-apiserver as the node.
	Client kubernetes.Interface
}

// RegisterNode creates the Node object name as its kubelet does, and
// returns that kubelet.
func (cp *ControlPlane) RegisterNode(ctx context.Context, name string) (*Kubelet, error) {
	client, err := kubernetes.NewForConfig(cp.UserConfig("system:node:"+name, "system:nodes"))
	if err != nil {
		return nil, err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("registering node %s as system:node:%s: %w", name, name, err)
	}
	return &Kubelet{NodeName: name, NodeUID: created.UID, Client: client}, nil
}

// podCertificateKeyTypes maps a podCertificate keyType to the key kubelet
// generates for it.
var podCertificateKeyTypes = map[string]testpki.KeyType{
	"RSA3072":   testpki.RSA3072,
	"RSA4096":   testpki.RSA4096,
	"ECDSAP256": testpki.ECDSAP256,
	"ECDSAP384": testpki.ECDSAP384,
	"ECDSAP521": testpki.ECDSAP521,
	"ED25519":   testpki.Ed25519,
}

// RequestPodCertificate does what kubelet does for the podCertificate
// projection source of pod (which must be bound to this node): it generates
// a key of the source's keyType, signs an empty PKCS#10 request with it (the
// stub), reads the pod's ServiceAccount for its UID, and creates a
// PodCertificateRequest in the pod's namespace, owned by the pod, named
// req-<random>. It returns the key and the request as created.
func (k *Kubelet) RequestPodCertificate(ctx context.Context, pod *corev1.Pod, source *corev1.PodCertificateProjection) (crypto.Signer, *certificatesv1.PodCertificateRequest, error) {
	kt, ok := podCertificateKeyTypes[source.KeyType]
	if !ok {
		return nil, nil, fmt.Errorf("unknown keyType %q", source.KeyType)
	}
	key, err := testpki.NewKey(kt)
	if err != nil {
		return nil, nil, err
	}
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	sa, err := k.Client.CoreV1().ServiceAccounts(pod.Namespace).Get(ctx, pod.Spec.ServiceAccountName, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("reading ServiceAccount %s/%s as node %s: %w", pod.Namespace, pod.Spec.ServiceAccountName, k.NodeName, err)
	}
	req := &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    pod.Namespace,
			GenerateName: "req-",
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
			}},
		},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName:                source.SignerName,
			PodName:                   pod.Name,
			PodUID:                    pod.UID,
			ServiceAccountName:        sa.Name,
			ServiceAccountUID:         sa.UID,
			NodeName:                  types.NodeName(k.NodeName),
			NodeUID:                   k.NodeUID,
			MaxExpirationSeconds:      source.MaxExpirationSeconds,
			StubPKCS10Request:         stub,
			UnverifiedUserAnnotations: source.UserAnnotations,
		},
	}
	created, err := k.Client.CertificatesV1().PodCertificateRequests(pod.Namespace).Create(ctx, req, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("creating a PodCertificateRequest for pod %s/%s as node %s: %w", pod.Namespace, pod.Name, k.NodeName, err)
	}
	return key, created, nil
}
