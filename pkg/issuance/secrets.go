package issuance

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NewSecretGetter is a SecretReader that GETs each Secret from kube-apiserver.
func NewSecretGetter(kube kubernetes.Interface) SecretReader { return secretGetter{kube} }

type secretGetter struct{ kube kubernetes.Interface }

func (g secretGetter) SecretData(ctx context.Context, namespace, name string) (map[string][]byte, bool, error) {
	s, err := g.kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return s.Data, true, nil
}
