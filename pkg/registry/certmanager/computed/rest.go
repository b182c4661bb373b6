// Package computed is the read-only REST storage behind signers and
// clustersigners: objects computed from the issuers read model, never stored.
// It implements get, list and watch (with label and field selectors) and
// table output; pkg/registry/certmanager/signer and .../clustersigner each
// configure it for one resource.
package computed

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
)

// Resource describes one computed resource.
type Resource struct {
	// Kind of issuer the resource shows.
	Kind         issuers.Kind
	Resource     schema.GroupResource
	SingularName string
	Namespaced   bool
	// Categories are the discovery categories (kubectl get <category>).
	Categories []string
	New        func() runtime.Object
	NewList    func() runtime.Object
	// Build makes the API object for one issuer's State.
	Build func(meta metav1.ObjectMeta, spec certmanager.SignerSpec, status certmanager.SignerStatus) runtime.Object
	// SetItems fills a list made by NewList.
	SetItems func(list runtime.Object, items []runtime.Object)
}

// Source is what the storage reads: the issuers read model.
type Source interface {
	Get(ref issuers.Ref) (*issuers.State, bool)
	List(kind issuers.Kind, namespace string) ([]*issuers.State, uint64)
	Watch(resourceVersion uint64) (*issuers.Watch, error)
}

// REST is read-only storage for one computed resource.
type REST struct {
	res    Resource
	source Source
	table
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Watcher              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.CategoriesProvider   = &REST{}
	_ rest.TableConvertor       = &REST{}
)

// NewREST returns storage for res reading from source.
func NewREST(res Resource, source Source) *REST {
	return &REST{res: res, source: source}
}

func (r *REST) New() runtime.Object     { return r.res.New() }
func (r *REST) NewList() runtime.Object { return r.res.NewList() }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return r.res.Namespaced }
func (r *REST) GetSingularName() string { return r.res.SingularName }
func (r *REST) Categories() []string    { return r.res.Categories }
func (r *REST) namespace(ctx context.Context) string {
	if !r.res.Namespaced {
		return ""
	}
	return genericapirequest.NamespaceValue(ctx)
}

// Get returns one object.
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ref := issuers.Ref{Kind: r.res.Kind, Namespace: r.namespace(ctx), Name: name}
	s, ok := r.source.Get(ref)
	if !ok {
		return nil, apierrors.NewNotFound(r.res.Resource, name)
	}
	return r.object(s), nil
}

// List returns the objects that match the selectors, at one resource
// version. With a limit it returns one page and a continue token for the
// next; every page comes from the same snapshot (chunk.go).
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	match, err := r.matcher(opts)
	if err != nil {
		return nil, err
	}
	p, err := r.listPage(r.namespace(ctx), opts, match, selective(opts))
	if err != nil {
		return nil, err
	}
	items := make([]runtime.Object, len(p.states))
	for i, s := range p.states {
		items[i] = r.object(s)
	}
	list := r.res.NewList()
	r.res.SetItems(list, items)
	if lm, err := meta.ListAccessor(list); err == nil {
		lm.SetResourceVersion(strconv.FormatUint(p.resourceVersion, 10))
		lm.SetContinue(p.continueToken)
		lm.SetRemainingItemCount(p.remaining)
	}
	return list, nil
}

// selective says whether a list has label or field selectors.
func selective(opts *metainternalversion.ListOptions) bool {
	return opts != nil && ((opts.LabelSelector != nil && !opts.LabelSelector.Empty()) || (opts.FieldSelector != nil && !opts.FieldSelector.Empty()))
}

// matcher turns list options into a predicate. Only the selectors signet can
// answer are accepted; anything else is a clear 400.
func (r *REST) matcher(opts *metainternalversion.ListOptions) (func(*issuers.State) bool, error) {
	labelSel, fieldSel := labels.Everything(), fields.Everything()
	if opts != nil {
		if opts.LabelSelector != nil {
			labelSel = opts.LabelSelector
		}
		if opts.FieldSelector != nil {
			fieldSel = opts.FieldSelector
		}
	}
	for _, req := range fieldSel.Requirements() {
		switch req.Field {
		case "metadata.name", "metadata.namespace", "spec.type":
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field selector %q is not supported for %s: use metadata.name, metadata.namespace or spec.type", req.Field, r.res.Resource))
		}
	}
	return func(s *issuers.State) bool {
		if !labelSel.Empty() && !labelSel.Matches(labels.Set(s.Issuer.Labels)) {
			return false
		}
		if fieldSel.Empty() {
			return true
		}
		return fieldSel.Matches(fields.Set{
			"metadata.name":      s.Issuer.Name,
			"metadata.namespace": s.Issuer.Namespace,
			"spec.type":          string(s.Issuer.Type),
		})
	}, nil
}

func (r *REST) object(s *issuers.State) runtime.Object {
	m, spec, status := Fields(s)
	return r.res.Build(m, spec, status)
}
