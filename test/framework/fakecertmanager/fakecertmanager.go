// Package fakecertmanager plays cert-manager's part for signet's tests: a
// controller that acts on cert-manager.io/v1 CertificateRequests as
// cert-manager's issuer controllers (and external issuers' controllers) do —
// nothing until a request is Approved; Ready=False reason Denied once it is
// Denied; Pending while its issuer is missing or not Ready — and then signs,
// fails, marks invalid or leaves pending, as an annotation on the issuer
// asks. It signs with an intermediate of its own root, so that
// status.certificate is leaf + intermediate and status.ca the root, as
// cert-manager's Vault issuer answers.
//
// It speaks to kube-apiserver through a dynamic client only: like signet, it
// imports nothing of cert-manager.
package fakecertmanager

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/signet-dev/signet/internal/testpki"
)

// Annotations on an issuer (a cert-manager Issuer or ClusterIssuer, or a
// TestIssuer or TestClusterIssuer) that say what happens to the
// CertificateRequests that name it once they are Approved.
const (
	// AnnotationOutcome is one of the Outcome values; default OutcomeSign.
	AnnotationOutcome = "fakecertmanager.example.com/outcome"
	// AnnotationSignDelay (a Go duration) delays signing, counted from the
	// CertificateRequest's creation.
	AnnotationSignDelay = "fakecertmanager.example.com/sign-delay"
)

// Outcomes an issuer's AnnotationOutcome asks for.
const (
	// OutcomeSign: Ready=True reason Issued with status.certificate and status.ca.
	OutcomeSign = "sign"
	// OutcomeFail: Ready=False reason Failed and status.failureTime.
	OutcomeFail = "fail"
	// OutcomeInvalid: InvalidRequest=True, and Ready=False reason Failed.
	OutcomeInvalid = "invalid"
	// OutcomePending: Ready=False reason Pending, for ever (an ACME order
	// whose challenges never pass).
	OutcomePending = "pending"
)

// Messages the fake writes, so tests can look for them.
const (
	MessageFailed  = "the issuer refused to sign: fakecertmanager outcome fail"
	MessageInvalid = "the request is invalid: fakecertmanager outcome invalid"
	MessagePending = "Waiting on certificate issuance from order: fakecertmanager outcome pending"
	MessageDenied  = "The CertificateRequest was denied by an approval controller"
)

// GVRs of the objects the fake reads and writes.
var (
	CertificateRequestGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificaterequests"}
	IssuerGVR             = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "issuers"}
	ClusterIssuerGVR      = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
	TestIssuerGVR         = schema.GroupVersionResource{Group: "example.com", Version: "v1alpha1", Resource: "testissuers"}
	TestClusterIssuerGVR  = schema.GroupVersionResource{Group: "example.com", Version: "v1alpha1", Resource: "testclusterissuers"}
)

// issuerKinds maps an issuerRef's group and kind to the issuer's resource
// and scope: the issuers the fake signs for.
var issuerKinds = map[schema.GroupKind]struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	{Group: "cert-manager.io", Kind: "Issuer"}:        {IssuerGVR, true},
	{Group: "cert-manager.io", Kind: "ClusterIssuer"}: {ClusterIssuerGVR, false},
	{Group: "example.com", Kind: "TestIssuer"}:        {TestIssuerGVR, true},
	{Group: "example.com", Kind: "TestClusterIssuer"}: {TestClusterIssuerGVR, false},
}

// TestIssuerCRDs are the CRDs of testissuers.example.com (namespaced) and
// testclusterissuers.example.com (cluster-scoped), a multi-document YAML.
//
//go:embed testissuers.yaml
var TestIssuerCRDs []byte

// Controller is a running fake cert-manager.
type Controller struct {
	dyn          dynamic.Interface
	root         *testpki.CA
	intermediate *testpki.CA
	crs          cache.Indexer
	queue        workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	issued map[string]int // certificates written, by CertificateRequest namespace/name
}

// Start runs the fake until ctx ends; it returns once its cache has synced.
func Start(ctx context.Context, cfg *rest.Config) (*Controller, error) {
	root, err := testpki.NewCA(testpki.CAOptions{CommonName: "fakecertmanager root"})
	if err != nil {
		return nil, err
	}
	intermediate, err := testpki.NewCA(testpki.CAOptions{CommonName: "fakecertmanager intermediate", Parent: root})
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 1000
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		dyn:          dyn,
		root:         root,
		intermediate: intermediate,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 2*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "fakecertmanager"}),
		issued: map[string]int{},
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	inf := factory.ForResource(CertificateRequestGVR).Informer()
	enqueue := func(obj interface{}) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	c.crs = inf.GetIndexer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, errors.New("fakecertmanager: the CertificateRequest cache did not sync (is cert-manager's CertificateRequest CRD installed?)")
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	for range 4 {
		go wait.UntilWithContext(ctx, c.work, time.Second)
	}
	return c, nil
}

// RootPEM is the root CA of every certificate the fake signs (status.ca).
func (c *Controller) RootPEM() []byte { return c.root.CertPEM() }

// Root is that root CA's certificate.
func (c *Controller) Root() *x509.Certificate { return c.root.Cert }

// Intermediate is the CA that signs the leaves, the second certificate of
// every status.certificate.
func (c *Controller) Intermediate() *x509.Certificate { return c.intermediate.Cert }

// Issued is how many certificates the fake wrote to CertificateRequest namespace/name.
func (c *Controller) Issued(namespace, name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issued[namespace+"/"+name]
}

// IssuedTotal is how many certificates the fake wrote in all.
func (c *Controller) IssuedTotal() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.issued {
		n += v
	}
	return n
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		after, err := c.sync(ctx, key)
		switch {
		case err != nil:
			c.queue.AddRateLimited(key)
		case after > 0:
			c.queue.Forget(key)
			c.queue.AddAfter(key, after)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// sync acts on one CertificateRequest as cert-manager would; after > 0 asks
// to be called again then (an issuer not there or not Ready yet, a delay).
func (c *Controller) sync(ctx context.Context, key string) (after time.Duration, err error) {
	obj, exists, err := c.crs.GetByKey(key)
	if err != nil || !exists {
		return 0, err
	}
	cr := obj.(*unstructured.Unstructured).DeepCopy()
	switch readyReason(cr) {
	case "Issued", "Failed", "Denied":
		return 0, nil
	}
	if conditionTrue(cr, "Denied") {
		setCondition(cr, "Ready", "False", "Denied", MessageDenied)
		setFailureTime(cr)
		return 0, c.writeStatus(ctx, cr)
	}
	if conditionTrue(cr, "InvalidRequest") || !conditionTrue(cr, "Approved") {
		return 0, nil
	}

	group, _, _ := unstructured.NestedString(cr.Object, "spec", "issuerRef", "group")
	kind, _, _ := unstructured.NestedString(cr.Object, "spec", "issuerRef", "kind")
	name, _, _ := unstructured.NestedString(cr.Object, "spec", "issuerRef", "name")
	if group == "" {
		group = "cert-manager.io"
	}
	if kind == "" {
		kind = "Issuer"
	}
	ik, ours := issuerKinds[schema.GroupKind{Group: group, Kind: kind}]
	if !ours {
		return 0, nil
	}
	ri := c.dyn.Resource(ik.gvr)
	var issuer *unstructured.Unstructured
	if ik.namespaced {
		issuer, err = ri.Namespace(cr.GetNamespace()).Get(ctx, name, metav1.GetOptions{})
	} else {
		issuer, err = ri.Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return time.Second, c.pending(ctx, cr, "IssuerNotFound", fmt.Sprintf("Referenced %q not found", kind))
	}
	if err != nil {
		return 0, err
	}
	if !conditionTrue(issuer, "Ready") {
		return time.Second, c.pending(ctx, cr, "IssuerNotReady", "Referenced issuer does not have a Ready status condition")
	}

	switch outcome := issuer.GetAnnotations()[AnnotationOutcome]; outcome {
	case OutcomeFail:
		setCondition(cr, "Ready", "False", "Failed", MessageFailed)
		setFailureTime(cr)
		return 0, c.writeStatus(ctx, cr)
	case OutcomeInvalid:
		setCondition(cr, "InvalidRequest", "True", "RequestInvalid", MessageInvalid)
		setCondition(cr, "Ready", "False", "Failed", MessageInvalid)
		setFailureTime(cr)
		return 0, c.writeStatus(ctx, cr)
	case OutcomePending:
		return 0, c.pending(ctx, cr, "Pending", MessagePending)
	case "", OutcomeSign:
	default:
		return 0, fmt.Errorf("issuer %s/%s: unknown %s %q", issuer.GetNamespace(), issuer.GetName(), AnnotationOutcome, outcome)
	}
	if d := issuer.GetAnnotations()[AnnotationSignDelay]; d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			return 0, fmt.Errorf("issuer %s/%s: %s: %w", issuer.GetNamespace(), issuer.GetName(), AnnotationSignDelay, err)
		}
		if left := time.Until(cr.GetCreationTimestamp().Add(delay)); left > 0 {
			return left, c.pending(ctx, cr, "Pending", "fakecertmanager: signing after "+d)
		}
	}
	certPEM, err := c.sign(cr)
	if err != nil {
		setCondition(cr, "Ready", "False", "Failed", "Failed to sign: "+err.Error())
		setFailureTime(cr)
		return 0, c.writeStatus(ctx, cr)
	}
	_ = unstructured.SetNestedField(cr.Object, base64.StdEncoding.EncodeToString(certPEM), "status", "certificate")
	_ = unstructured.SetNestedField(cr.Object, base64.StdEncoding.EncodeToString(c.root.CertPEM()), "status", "ca")
	setCondition(cr, "Ready", "True", "Issued", "Certificate fetched from issuer successfully")
	if err := c.writeStatus(ctx, cr); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.issued[key]++
	c.mu.Unlock()
	return 0, nil
}

// pending sets Ready=False with reason Pending-like reasons, writing only
// when that changes the condition.
func (c *Controller) pending(ctx context.Context, cr *unstructured.Unstructured, reason, message string) error {
	if cond := condition(cr, "Ready"); cond != nil && cond["reason"] == reason && cond["message"] == message {
		return nil
	}
	setCondition(cr, "Ready", "False", reason, message)
	return c.writeStatus(ctx, cr)
}

func (c *Controller) writeStatus(ctx context.Context, cr *unstructured.Unstructured) error {
	_, err := c.dyn.Resource(CertificateRequestGVR).Namespace(cr.GetNamespace()).UpdateStatus(ctx, cr, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// sign makes the certificate a CertificateRequest asks for, signed by the
// intermediate: leaf + intermediate as PEM.
func (c *Controller) sign(cr *unstructured.Unstructured) ([]byte, error) {
	reqB64, _, _ := unstructured.NestedString(cr.Object, "spec", "request")
	reqPEM, err := base64.StdEncoding.DecodeString(reqB64)
	if err != nil {
		return nil, fmt.Errorf("spec.request: %w", err)
	}
	block, _ := pem.Decode(reqPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("spec.request holds no PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	duration := 90 * 24 * time.Hour
	if d, found, _ := unstructured.NestedString(cr.Object, "spec", "duration"); found {
		if duration, err = time.ParseDuration(d); err != nil {
			return nil, fmt.Errorf("spec.duration: %w", err)
		}
	}
	isCA, _, _ := unstructured.NestedBool(cr.Object, "spec", "isCA")
	usages, _, _ := unstructured.NestedStringSlice(cr.Object, "spec", "usages")
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               csr.Subject,
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		URIs:                  csr.URIs,
		EmailAddresses:        csr.EmailAddresses,
		NotBefore:             now,
		NotAfter:              now.Add(duration),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	for _, u := range usages {
		switch u {
		case "digital signature":
			tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
		case "key encipherment":
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		case "cert sign":
			tmpl.KeyUsage |= x509.KeyUsageCertSign
		case "server auth":
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		case "client auth":
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		default:
			return nil, fmt.Errorf("usage %q is not one fakecertmanager signs", u)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.intermediate.Cert, csr.PublicKey, c.intermediate.Key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.intermediate.CertPEM()...), nil
}

// SetIssuerReady sets the Ready condition of an issuer's status, as
// cert-manager (or an external issuer's controller) does once it has checked
// the issuer's configuration. namespace is empty for cluster-scoped issuers.
func SetIssuerReady(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, namespace, name string, ready bool, reason, message string) error {
	status := "False"
	if ready {
		status = "True"
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if namespace != "" {
		ri = dyn.Resource(gvr).Namespace(namespace)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		setCondition(u, "Ready", status, reason, message)
		if conds, ok := u.Object["status"].(map[string]interface{})["conditions"].([]interface{}); ok {
			for _, c := range conds {
				c.(map[string]interface{})["observedGeneration"] = u.GetGeneration()
			}
		}
		_, err = ri.UpdateStatus(ctx, u, metav1.UpdateOptions{})
		return err
	})
}

func condition(u *unstructured.Unstructured, typ string) map[string]interface{} {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	c := condition(u, typ)
	return c != nil && strings.EqualFold(fmt.Sprint(c["status"]), "True")
}

func readyReason(u *unstructured.Unstructured) string {
	if c := condition(u, "Ready"); c != nil {
		r, _ := c["reason"].(string)
		return r
	}
	return ""
}

// setCondition replaces the condition of type typ, or appends it.
func setCondition(u *unstructured.Unstructured, typ, status, reason, message string) {
	now := time.Now().UTC().Format(time.RFC3339)
	cond := map[string]interface{}{"type": typ, "status": status, "reason": reason, "message": message, "lastTransitionTime": now}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for i, c := range conds {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == typ {
			if m["status"] == status {
				cond["lastTransitionTime"] = m["lastTransitionTime"]
			}
			conds[i] = cond
			_ = unstructured.SetNestedSlice(u.Object, conds, "status", "conditions")
			return
		}
	}
	_ = unstructured.SetNestedSlice(u.Object, append(conds, cond), "status", "conditions")
}

func setFailureTime(u *unstructured.Unstructured) {
	_ = unstructured.SetNestedField(u.Object, time.Now().UTC().Format(time.RFC3339), "status", "failureTime")
}
