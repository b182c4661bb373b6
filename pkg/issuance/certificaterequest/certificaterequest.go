// Package certificaterequest is the issuance backend for the issuers signet
// does not sign with itself — cert-manager's ACME, Vault and Venafi issuers
// and cert-manager external issuers. signet does not re-implement them: each
// request becomes one cert-manager.io/v1 CertificateRequest, which
// cert-manager (or the external issuer's controller) signs, and the backend
// copies the result back.
//
// One request, one CertificateRequest: its name derives from the request's
// UID alone (Name), so whichever replica or attempt gets there first creates
// it and every later one finds it — in the cache, or as AlreadyExists — and
// adopts it. A CSR's CertificateRequest is owned by the CSR (garbage
// collected with it) and deleted by Withdraw when the CSR is denied or deleted.
package certificaterequest

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/signet-dev/signet/pkg/issuance"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/signers"
	"github.com/signet-dev/signet/pkg/wire"
)

// Types are the issuer types this backend signs for.
var Types = []issuers.Type{issuers.TypeACME, issuers.TypeVault, issuers.TypeVenafi, issuers.TypeExternal}

// ReasonApproved is the reason of the Approved condition signet sets on the
// CertificateRequests it creates.
const ReasonApproved = "SignetApproved"

// syncWait bounds how long a request waits for the CertificateRequest cache
// to sync before it is told to come back (with backoff).
const syncWait = 5 * time.Second

// Backend creates, approves and reads CertificateRequests.
type Backend struct {
	dyn              dynamic.Interface
	namespace        string
	externalApproval bool
	ctx              context.Context

	informer cache.SharedIndexInformer
	start    sync.Once

	// approved remembers the CertificateRequests (by UID) this process
	// approved, so that a stale cache entry is not approved again (which
	// would only conflict). Entries go with the object.
	approved sync.Map

	mu        sync.Mutex
	listeners []func(issuance.Object)
}

var (
	_ issuance.Backend    = &Backend{}
	_ issuance.Withdrawer = &Backend{}
	_ issuance.Notifier   = &Backend{}
)

// New builds the backend from deps. Its cache of CertificateRequests starts
// with the first request, not before: a cluster without cert-manager has no
// CertificateRequest API and never needs it.
func New(deps issuance.Deps) issuance.Backend {
	opts := deps.CertificateRequests
	b := &Backend{
		dyn:              deps.Dynamic,
		namespace:        opts.Namespace,
		externalApproval: opts.ExternalApproval,
		ctx:              deps.Context,
	}
	if b.ctx == nil {
		b.ctx = context.Background()
	}
	// Only signet's own CertificateRequests, without managed fields or the
	// request (not read again once sent): a burst of them stays small.
	b.informer = dynamicinformer.NewFilteredDynamicInformer(deps.Dynamic, GVR, metav1.NamespaceAll, 0,
		cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = LabelRequestUID }).Informer()
	// SetTransform and AddEventHandler fail only on a started informer; this
	// one starts with the first request.
	_ = b.informer.SetTransform(func(obj interface{}) (interface{}, error) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			u.SetManagedFields(nil)
			unstructured.RemoveNestedField(u.Object, "spec", "request")
		}
		return obj, nil
	})
	_, _ = b.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    b.changed,
		UpdateFunc: func(_, obj interface{}) { b.changed(obj) },
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				b.approved.Delete(u.GetUID())
			}
			b.changed(obj)
		},
	})
	return b
}

// OnChange registers f, called with the request a CertificateRequest was
// made for whenever that CertificateRequest changes.
func (b *Backend) OnChange(f func(issuance.Object)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listeners = append(b.listeners, f)
}

func (b *Backend) changed(obj interface{}) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	o, ok := requestOf(u)
	if !ok {
		return
	}
	b.mu.Lock()
	listeners := b.listeners
	b.mu.Unlock()
	for _, f := range listeners {
		f(o)
	}
}

// requestOf reads back which request a CertificateRequest was made for.
func requestOf(u *unstructured.Unstructured) (issuance.Object, bool) {
	uid := u.GetLabels()[LabelRequestUID]
	kind, name, found := strings.Cut(u.GetAnnotations()[AnnotationRequest], " ")
	if uid == "" || !found {
		return issuance.Object{}, false
	}
	return issuance.Object{Kind: kind, Name: name, UID: types.UID(uid)}, true
}

// synced starts the cache on first use and waits, briefly, for it.
func (b *Backend) synced(ctx context.Context) bool {
	b.start.Do(func() { go b.informer.RunWithContext(b.ctx) })
	if b.informer.HasSynced() {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	return cache.WaitForCacheSync(ctx.Done(), b.informer.HasSynced)
}

// notSynced says why the cache has not synced: usually cert-manager's
// CertificateRequest CRD is missing, which a List shows.
func (b *Backend) notSynced(ctx context.Context) *issuance.Waiting {
	why := "signet's cache of CertificateRequests has not synced yet"
	if _, err := b.dyn.Resource(GVR).List(ctx, metav1.ListOptions{Limit: 1, LabelSelector: LabelRequestUID}); err != nil {
		why = fmt.Sprintf("cannot list cert-manager CertificateRequests (is cert-manager installed?): %v", err)
	}
	return &issuance.Waiting{For: issuance.WaitCertificateRequest, Reason: wire.ReasonCertificateRequestPending, Message: why, Backoff: true}
}

// Issue finds or creates req's CertificateRequest, approves it unless
// approval is left to another approver, and reports what it says.
func (b *Backend) Issue(ctx context.Context, req *issuance.Request, tmpl *signers.Template, issuer *issuers.State, _ time.Time) (issuance.Outcome, error) {
	if !b.synced(ctx) {
		return b.notSynced(ctx), nil
	}
	iss := issuer.Issuer
	if req.Synchronous && iss.Type == issuers.TypeACME {
		return &issuance.Failed{Reason: wire.ReasonAsynchronousIssuer, Message: fmt.Sprintf(
			"%s signs asynchronously (ACME orders and challenges take minutes): request a certificate with a CertificateSigningRequest", describe(iss))}, nil
	}
	ns := b.namespaceFor(iss.Ref)
	name := Name(req.Object)
	cr, err := b.get(ns, name)
	if err != nil {
		return nil, err
	}
	if cr == nil {
		if cr, err = b.create(ctx, ns, name, req, tmpl, iss); err != nil {
			return nil, err
		}
	}
	if uid := cr.GetLabels()[LabelRequestUID]; uid != string(req.Object.UID) {
		return &issuance.Failed{Reason: wire.ReasonCertificateRequestConflict, Message: fmt.Sprintf(
			"CertificateRequest %s/%s, the name signet gives %s's, exists and was not made for it (%s=%q)", ns, name, req.Object, LabelRequestUID, uid)}, nil
	}
	// A CertificateRequest this process approved counts as approved even
	// while the cache still shows it as it was.
	_, approvedHere := b.approved.Load(cr.GetUID())
	if !b.externalApproval && !approvedHere && !isTrue(cr, conditionApproved) && !isTrue(cr, conditionDenied) {
		if cr, err = b.approve(ctx, cr, req); err != nil {
			return nil, err
		}
	}
	return outcomeOf(cr, approvedHere, tmpl.PublicKey, describe(iss)), nil
}

// namespaceFor: an Issuer's CertificateRequests are in its namespace (where
// cert-manager looks for the Issuer a CertificateRequest names); a
// ClusterIssuer's in the configured namespace.
func (b *Backend) namespaceFor(ref issuers.Ref) string {
	if ref.Kind == issuers.KindIssuer {
		return ref.Namespace
	}
	return b.namespace
}

func (b *Backend) get(ns, name string) (*unstructured.Unstructured, error) {
	obj, exists, err := b.informer.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil || !exists {
		return nil, err
	}
	return obj.(*unstructured.Unstructured), nil
}

// create makes req's CertificateRequest; if it exists already (made by
// another replica, an earlier leader, or an attempt the cache has not seen
// yet) it reads and adopts that one. Never two.
func (b *Backend) create(ctx context.Context, ns, name string, req *issuance.Request, tmpl *signers.Template, iss *issuers.Issuer) (*unstructured.Unstructured, error) {
	kind, group := issuerRefOf(iss)
	spec := map[string]interface{}{
		"request": base64.StdEncoding.EncodeToString(req.PKCS10),
		"issuerRef": map[string]interface{}{
			"name":  iss.Name,
			"kind":  kind,
			"group": group,
		},
		"duration": tmpl.Duration.String(),
	}
	if tmpl.IsCA {
		spec["isCA"] = true
	}
	if len(req.Usages) > 0 {
		usages := make([]interface{}, len(req.Usages))
		for i, u := range req.Usages {
			usages[i] = u
		}
		spec["usages"] = usages
	}
	cr := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": GVR.GroupVersion().String(),
		"kind":       "CertificateRequest",
		"spec":       spec,
	}}
	cr.SetNamespace(ns)
	cr.SetName(name)
	cr.SetLabels(map[string]string{LabelRequestUID: string(req.Object.UID)})
	cr.SetAnnotations(map[string]string{AnnotationRequest: req.Object.Kind + " " + req.Object.Name})
	if req.Object.Kind == issuance.KindCertificateSigningRequest {
		// A cluster-scoped owner may own a namespaced object: the CSR's
		// deletion takes its CertificateRequest with it.
		controller := true
		cr.SetOwnerReferences([]metav1.OwnerReference{{
			APIVersion: "certificates.k8s.io/v1",
			Kind:       issuance.KindCertificateSigningRequest,
			Name:       req.Object.Name,
			UID:        req.Object.UID,
			Controller: &controller,
		}})
	}
	client := b.dyn.Resource(GVR).Namespace(ns)
	created, err := client.Create(ctx, cr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("CertificateRequest %s/%s for %s: %w", ns, name, req.Object, err)
	}
	klog.FromContext(ctx).V(2).Info("Created CertificateRequest", "certificateRequest", klog.KObj(created), "request", req.Object.String())
	return created, nil
}

// approve sets Approved on cr, on the version read: a conflict means it
// changed (cert-manager, another approver) and is decided again.
func (b *Backend) approve(ctx context.Context, cr *unstructured.Unstructured, req *issuance.Request) (*unstructured.Unstructured, error) {
	cr = cr.DeepCopy()
	conds, _, _ := unstructured.NestedSlice(cr.Object, "status", "conditions")
	message := fmt.Sprintf("Approved by signet: %s was approved", req.Object)
	if req.Approval != "" {
		message += " (" + req.Approval + ")"
	}
	conds = append(conds, map[string]interface{}{
		"type":               conditionApproved,
		"status":             "True",
		"reason":             ReasonApproved,
		"message":            message,
		"lastTransitionTime": metav1.Now().UTC().Format(time.RFC3339),
	})
	if err := unstructured.SetNestedSlice(cr.Object, conds, "status", "conditions"); err != nil {
		return nil, err
	}
	updated, err := b.dyn.Resource(GVR).Namespace(cr.GetNamespace()).UpdateStatus(ctx, cr, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("approving CertificateRequest %s/%s for %s: %w", cr.GetNamespace(), cr.GetName(), req.Object, err)
	}
	b.approved.Store(updated.GetUID(), struct{}{})
	return updated, nil
}

// Withdraw deletes the CertificateRequest made for obj, if there is one: its
// CSR was denied or deleted, so nothing of it is left behind. Its name is
// known (Name), so this needs no cache, which may not have seen it yet: a
// GET, when the cache has not got it, says whether it exists and is signet's.
func (b *Backend) Withdraw(ctx context.Context, obj issuance.Object, issuer *issuers.State) error {
	ns, name := b.namespaceFor(issuer.Issuer.Ref), Name(obj)
	client := b.dyn.Resource(GVR).Namespace(ns)
	cr, err := b.get(ns, name)
	if err == nil && cr == nil {
		cr, err = client.Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("CertificateRequest %s/%s of %s: %w", ns, name, obj, err)
	}
	if cr.GetLabels()[LabelRequestUID] != string(obj.UID) {
		return nil // not made for obj: not signet's to delete
	}
	uid := cr.GetUID()
	err = client.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting CertificateRequest %s/%s of %s: %w", ns, name, obj, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted CertificateRequest", "certificateRequest", klog.KRef(ns, name), "request", obj.String())
	return nil
}

// issuerRefOf is the issuerRef cert-manager resolves to iss: kind and group
// of the issuer object.
func issuerRefOf(iss *issuers.Issuer) (kind, group string) {
	if iss.External == "" {
		return string(iss.Kind), wire.Group
	}
	_, group, _ = strings.Cut(iss.External, ".")
	return iss.ObjectKind, group
}

// describe names an issuer in messages: "Vault Issuer ns/name", "TestIssuer ns/name".
func describe(iss *issuers.Issuer) string {
	if iss.External != "" {
		if iss.Kind == issuers.KindClusterIssuer {
			return iss.ObjectKind + " " + iss.Name
		}
		return iss.ObjectKind + " " + iss.Namespace + "/" + iss.Name
	}
	return string(iss.Type) + " " + iss.Ref.String()
}
