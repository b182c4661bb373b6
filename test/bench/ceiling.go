package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The ceilings are the least work any signer can do, so signet's figures are
// read against them. They run as `bench ceiling` in a process of their own,
// so that their CPU and memory are measured apart from the bench's, and talk
// to kube-apiserver as an ideal signer would: protobuf, a watch of their
// signer name, and for each approved CSR one UpdateStatus of the object read,
// without managedFields (signet's and kube-controller-manager's informers
// drop them too), carrying a certificate computed before the run. The
// SubjectAccessReview ceiling first asks, once per CSR, whether the
// requester may reference the signer — the same review signet makes (see
// pkg/controller/reference.go) — as any signer that checks reference must
// for a requester it has not seen.

const ceilingCommandName = "ceiling"

// ceilingConfig is what the bench tells a ceiling process.
type ceilingConfig struct {
	kubeconfig, signerName, leavesFile string
	writers                            int
	// referenceNamespace and referenceName, when set, make it the
	// SubjectAccessReview ceiling for that namespaced signer.
	referenceNamespace, referenceName string
}

func (c ceilingConfig) args() []string {
	a := []string{ceilingCommandName, "-kubeconfig=" + c.kubeconfig, "-signer-name=" + c.signerName,
		"-leaves=" + c.leavesFile, fmt.Sprintf("-writers=%d", c.writers)}
	if c.referenceName != "" {
		a = append(a, "-reference-namespace="+c.referenceNamespace, "-reference-name="+c.referenceName)
	}
	return a
}

// ceilingMain is `bench ceiling`: it signs until SIGTERM, after printing
// "ready" once its watch is in place.
func ceilingMain(args []string) error {
	var c ceilingConfig
	fs := flag.NewFlagSet(ceilingCommandName, flag.ContinueOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig to talk to kube-apiserver with")
	fs.StringVar(&c.signerName, "signer-name", "", "signer name to sign for")
	fs.StringVar(&c.leavesFile, "leaves", "", "JSON file mapping each request PEM to its certificate PEM")
	fs.IntVar(&c.writers, "writers", 16, "concurrent writers")
	fs.StringVar(&c.referenceNamespace, "reference-namespace", "", "namespace of the signer each requester must be allowed to reference")
	fs.StringVar(&c.referenceName, "reference-name", "", "name of that signer; empty: no SubjectAccessReview")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.kubeconfig == "" || c.signerName == "" || c.leavesFile == "" || c.writers < 1 {
		return errors.New("ceiling needs -kubeconfig, -signer-name, -leaves and -writers ≥ 1")
	}
	b, err := os.ReadFile(c.leavesFile)
	if err != nil {
		return err
	}
	var leaves map[string][]byte
	if err := json.Unmarshal(b, &leaves); err != nil {
		return fmt.Errorf("%s: %w", c.leavesFile, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return err
	}
	kube := kubernetes.NewForConfigOrDie(protobufConfig(cfg))

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	s := &ceilingSigner{kube: kube, leaves: leaves}
	if c.referenceName != "" {
		s.reference = &authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "reference",
			Namespace: c.referenceNamespace, Name: c.referenceName}
	}
	stop, err := s.run(ctx, c.signerName, c.writers)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	<-ctx.Done()
	stop()
	return nil
}

// protobufConfig is cfg as signet's own client is set up: protobuf, and a
// rate limit high enough never to be what bounds a burst.
func protobufConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.QPS, cfg.Burst = 5000, 10000
	return cfg
}

// ceilingSigner writes the precomputed certificate for each approved CSR of
// its signer name, after one SubjectAccessReview when reference is set.
type ceilingSigner struct {
	kube      kubernetes.Interface
	leaves    map[string][]byte
	reference *authorizationv1.ResourceAttributes
}

func (s *ceilingSigner) run(ctx context.Context, signerName string, writers int) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	work := make(chan *certificatesv1.CertificateSigningRequest, 100000)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for csr := range work {
				if err := s.issue(ctx, csr); err != nil && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "ceiling: CSR %s: %v\n", csr.Name, err)
				}
			}
		})
	}
	done := map[string]bool{}
	stopWatch, err := watchCSRs(ctx, s.kube, "spec.signerName="+signerName, func(csr *certificatesv1.CertificateSigningRequest) {
		if done[csr.Name] || len(csr.Status.Certificate) > 0 || !approved(csr) {
			return
		}
		done[csr.Name] = true
		csr.ManagedFields = nil
		work <- csr
	})
	if err != nil {
		cancel()
		close(work)
		wg.Wait()
		return nil, fmt.Errorf("watching CSRs for %s: %w", signerName, err)
	}
	return func() { cancel(); stopWatch(); close(work); wg.Wait() }, nil
}

func (s *ceilingSigner) issue(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	if s.reference != nil {
		allowed, err := s.mayReference(ctx, csr)
		if err != nil {
			return err
		}
		if !allowed {
			return fmt.Errorf("requester %q may not reference %s/%s (the bench grants it: a setup error)", csr.Spec.Username, s.reference.Namespace, s.reference.Name)
		}
	}
	leaf := s.leaves[string(csr.Spec.Request)]
	if leaf == nil {
		return errors.New("no precomputed certificate for its request")
	}
	csrs := s.kube.CertificatesV1().CertificateSigningRequests()
	for {
		csr.Status.Certificate = leaf
		_, err := csrs.UpdateStatus(ctx, csr, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
		if csr, err = csrs.Get(ctx, csr.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		csr.ManagedFields = nil
	}
}

// mayReference is one SubjectAccessReview with the CSR's requester and the
// attributes signet's reference check uses.
func (s *ceilingSigner) mayReference(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	attrs := *s.reference
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: csr.Spec.Username, Groups: csr.Spec.Groups, UID: csr.Spec.UID, Extra: extra, ResourceAttributes: &attrs,
	}}
	resp, err := s.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("SubjectAccessReview: %w", err)
	}
	return resp.Status.Allowed, nil
}
