package issuers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	corev1 "k8s.io/api/core/v1"
)

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// secretFeed is signet's one watch on Secrets: a metadata-only list and watch
// of every Secret in the cluster (names and resource versions, no data), so
// that kube-apiserver holds one watch for signet however many Issuers and
// Secrets exist, and no user can make it open more. It is a reflector's
// store that keeps nothing: it passes what it sees of the Secrets someone
// references to the secretReader and drops the rest.
type secretFeed struct {
	reader *secretReader
}

var _ cache.TransformingStore = secretFeed{}

func (f secretFeed) Add(obj interface{}) error    { return f.observe(obj, true) }
func (f secretFeed) Update(obj interface{}) error { return f.observe(obj, true) }
func (f secretFeed) Delete(obj interface{}) error { return f.observe(obj, false) }
func (f secretFeed) Resync() error                { return nil }

func (f secretFeed) observe(obj interface{}, exists bool) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("secret feed: %w", err)
	}
	f.reader.observe(SecretKey{Namespace: m.GetNamespace(), Name: m.GetName()}, exists, m.GetResourceVersion())
	return nil
}

func (f secretFeed) Replace(list []interface{}, _ string) error {
	present := make(map[SecretKey]string, len(list))
	for _, obj := range list {
		m, err := meta.Accessor(obj)
		if err != nil {
			return fmt.Errorf("secret feed: %w", err)
		}
		present[SecretKey{Namespace: m.GetNamespace(), Name: m.GetName()}] = m.GetResourceVersion()
	}
	f.reader.replace(present)
	return nil
}

// Transformer slims what the reflector holds while it streams the initial
// list (a watch-list keeps every object until the list ends) to a name and a
// resource version.
func (f secretFeed) Transformer() cache.TransformFunc { return secretVersionOnly }

func secretVersionOnly(obj interface{}) (interface{}, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: m.GetNamespace(), Name: m.GetName(), ResourceVersion: m.GetResourceVersion(),
	}}, nil
}

// newSecretFeed returns the reflector that feeds reader. With a metadata
// client it lists and watches Secret metadata only (protobuf); without one
// it falls back to full Secrets through kube, reduced to their metadata as
// they arrive: that is for fake clients in tests, as a real cluster's Secrets
// would all pass through signet.
func newSecretFeed(md metadata.Interface, kube kubernetes.Interface, reader *secretReader) *cache.Reflector {
	var lw cache.ListerWatcher
	if md != nil {
		secrets := md.Resource(secretsGVR)
		lw = cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return secrets.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return secrets.Watch(ctx, o)
			},
		}, md)
	} else {
		secrets := kube.CoreV1().Secrets(metav1.NamespaceAll)
		lw = cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				list, err := secrets.List(ctx, o)
				if err != nil {
					return nil, err
				}
				out := &metav1.PartialObjectMetadataList{ListMeta: list.ListMeta}
				for i := range list.Items {
					out.Items = append(out.Items, *meta.AsPartialObjectMetadata(&list.Items[i]))
				}
				return out, nil
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				w, err := secrets.Watch(ctx, o)
				if err != nil {
					return nil, err
				}
				return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
					if m, err := meta.Accessor(e.Object); err == nil && e.Type != watch.Error {
						e.Object = meta.AsPartialObjectMetadata(m)
					}
					return e, true
				}), nil
			},
		}, kube)
	}
	return cache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, secretFeed{reader: reader},
		cache.ReflectorOptions{Name: "secret-metadata", TypeDescription: "Secret metadata"})
}
