package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/transport"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/test/framework"
)

// groupLabel marks every CSR the bench creates with the set it belongs to, so
// that a set can be deleted once measured.
const groupLabel = "bench.signet.dev/group"

// requestKey is one requester key type: a PKCS#10 request made with it, and a
// certificate for that request signed by the bench CA, which the ceiling
// writes. Keys are generated before anything is timed.
type requestKey struct {
	name    string
	request []byte
	leaf    []byte
}

// newRequestKey makes a request with client-auth usages for a new key of type
// t, and a certificate for it signed by ca.
func newRequestKey(name string, t testpki.KeyType, ca *testpki.CA) (requestKey, error) {
	key, err := testpki.NewKey(t)
	if err != nil {
		return requestKey{}, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return requestKey{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: ca.Cert.SerialNumber, Subject: pkix.Name{CommonName: "bench"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return requestKey{}, err
	}
	return requestKey{
		name:    name,
		request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		leaf:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}),
	}, nil
}

// watchCSRs calls f, from one goroutine, with every CSR matching the field
// selector that exists and then with every change to one, until stop is
// called. A watch that kube-apiserver ends is resumed where it stopped.
func watchCSRs(ctx context.Context, kube kubernetes.Interface, selector string, f func(*certificatesv1.CertificateSigningRequest)) (stop func(), err error) {
	csrs := kube.CertificatesV1().CertificateSigningRequests()
	list, err := csrs.List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		return func() {}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return csrs.Watch(ctx, o)
		}})
	if err != nil {
		cancel()
		return func() {}, err
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range list.Items {
			f(&list.Items[i])
		}
		for e := range w.ResultChan() {
			if csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest); ok && e.Type != watch.Deleted {
				f(csr)
			} else if e.Type == watch.Error {
				fmt.Fprintf(os.Stderr, "watch of CSRs %s: %v\n", selector, apierrors.FromObject(e.Object))
			}
		}
	}()
	return func() { cancel(); w.Stop(); <-finished }, nil
}

func approved(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved {
			return true
		}
	}
	return false
}

// requesterGroup is the group of every distinct requester; the bench lets it
// create CSRs and reference the bench signer, as a cluster lets its nodes or
// service accounts.
const requesterGroup = "bench:requesters"

// createCSRs creates n CSRs named <prefix>-<i> with writers concurrent
// clients, labelled with group. With distinct set, each CSR is created by a
// user of its own, bench-requester-<prefix>-<i> in requesterGroup
// (impersonated), so that no two share a requester; otherwise all by the admin.
func createCSRs(ctx context.Context, kube kubernetes.Interface, group, prefix, signerName string, request []byte, n, writers int, distinct bool) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	err := framework.Parallel(ctx, n, writers, func(ctx context.Context, i int) error {
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: names[i], Labels: map[string]string{groupLabel: group}},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: request, SignerName: signerName,
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}},
		}
		if distinct {
			return kube.CertificatesV1().RESTClient().Post().Resource("certificatesigningrequests").
				SetHeader(transport.ImpersonateUserHeader, "bench-requester-"+names[i]).
				SetHeader(transport.ImpersonateGroupHeader, requesterGroup).
				Body(csr).Do(ctx).Error()
		}
		_, err := kube.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{})
		return err
	})
	return names, err
}

// deleteCSRs deletes every CSR labelled with group, with writers concurrent
// clients (DeleteCollection deletes one at a time and may outlast the
// server's request timeout), and returns how many it deleted.
func deleteCSRs(ctx context.Context, kube kubernetes.Interface, group string, writers int) (int, error) {
	list, err := kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{LabelSelector: groupLabel + "=" + group})
	if err != nil {
		return 0, err
	}
	err = framework.Parallel(ctx, len(list.Items), writers, func(ctx context.Context, i int) error {
		err := kube.CertificatesV1().CertificateSigningRequests().Delete(ctx, list.Items[i].Name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	return len(list.Items), err
}

// approveAll approves names with `workers` approvers and returns when each
// approval was acknowledged.
func approveAll(ctx context.Context, kube kubernetes.Interface, names []string, workers int) (map[string]time.Time, error) {
	var mu sync.Mutex
	at := map[string]time.Time{}
	var firstErr error
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for name := range jobs {
				for {
					csr, err := kube.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
					if err == nil {
						csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
							Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Bench"})
						_, err = kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, csr, metav1.UpdateOptions{})
					}
					if apierrors.IsConflict(err) {
						continue
					}
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					at[name] = time.Now()
					mu.Unlock()
					break
				}
			}
		})
	}
	for _, n := range names {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	return at, firstErr
}

type issuedWatch struct {
	mu    sync.Mutex
	times map[string]time.Time
	want  map[string]bool
	done  chan struct{}
	stop  func()
	err   error
}

// watchIssued records when each of names first shows a certificate.
func watchIssued(ctx context.Context, kube kubernetes.Interface, signerName string, names []string) *issuedWatch {
	iw := &issuedWatch{times: map[string]time.Time{}, want: map[string]bool{}, done: make(chan struct{})}
	for _, n := range names {
		iw.want[n] = true
	}
	selector := "spec.signerName=" + signerName
	if len(names) == 1 {
		selector += ",metadata.name=" + names[0]
	}
	iw.stop, iw.err = watchCSRs(ctx, kube, selector, func(csr *certificatesv1.CertificateSigningRequest) {
		if len(csr.Status.Certificate) == 0 || !iw.want[csr.Name] {
			return
		}
		iw.mu.Lock()
		defer iw.mu.Unlock()
		if _, seen := iw.times[csr.Name]; !seen {
			iw.times[csr.Name] = time.Now()
			if len(iw.times) == len(iw.want) {
				close(iw.done)
			}
		}
	})
	return iw
}

func (iw *issuedWatch) wait(d time.Duration) (map[string]time.Time, error) {
	defer iw.stop()
	if iw.err != nil {
		return nil, iw.err
	}
	select {
	case <-iw.done:
	case <-time.After(d):
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if len(iw.times) != len(iw.want) {
		return nil, fmt.Errorf("only %d of %d issued within %s", len(iw.times), len(iw.want), d)
	}
	out := make(map[string]time.Time, len(iw.times))
	for k, v := range iw.times {
		out[k] = v
	}
	return out, nil
}

// allowRequesters lets requesterGroup create CSRs and reference the bench
// signer bench/ca, and nothing else: what a cluster grants the identities
// that request certificates.
func (b *bench) allowRequesters(ctx context.Context) error {
	rbac := b.kube.RbacV1()
	subjects := []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: requesterGroup}}
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bench-requester"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{certificatesv1.GroupName}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bench-requester"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bench-requester"}, Subjects: subjects,
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := rbac.Roles("bench").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reference-ca"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"cert-manager.io"}, Resources: []string{"signers"}, ResourceNames: []string{"ca"}, Verbs: []string{"reference"}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := rbac.RoleBindings("bench").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "requesters-reference-ca"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reference-ca"}, Subjects: subjects,
	}, metav1.CreateOptions{})
	return err
}
