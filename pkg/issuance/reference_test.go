package issuance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/wire"
)

// The cache key must change with anything that can change the decision, and
// not with the order of groups or extra keys.
func TestReferenceKey(t *testing.T) {
	who := func(user, uid string, groups []string, extra map[string][]string) Requester {
		return Requester{Username: user, UID: uid, Groups: groups, Extra: extra}
	}
	ref := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
	base := referenceKey(who("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref)
	if k := referenceKey(who("alice", "1", []string{"b", "a"}, map[string][]string{"y": {"2"}, "x": {"1"}}), ref); k != base {
		t.Errorf("order changed the key: %s vs %s", k, base)
	}
	for desc, k := range map[string]string{
		"user":      referenceKey(who("bob", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref),
		"uid":       referenceKey(who("alice", "2", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref),
		"groups":    referenceKey(who("alice", "1", []string{"a"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref),
		"extra":     referenceKey(who("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}}), ref),
		"name":      referenceKey(who("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "other"}),
		"namespace": referenceKey(who("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), issuers.Ref{Kind: issuers.KindIssuer, Namespace: "other", Name: "ca"}),
		"kind":      referenceKey(who("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "ca"}),
	} {
		if k == base {
			t.Errorf("a different %s gives the same key", desc)
		}
	}
	// "a,b" as one group must not collide with groups "a" and "b".
	if referenceKey(who("alice", "1", []string{"a,b"}, nil), ref) == referenceKey(who("alice", "1", []string{"a", "b"}, nil), ref) {
		t.Error("group boundaries are ambiguous in the key")
	}
}

// sarServer answers SubjectAccessReviews from a set of allowed names and
// records what it was asked.
type sarServer struct {
	allowed map[string]bool // "<resource>/<namespace>/<name>"
	err     error
	asked   []authorizationv1.ResourceAttributes
}

func (s *sarServer) client() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		if s.err != nil {
			return true, nil, s.err
		}
		ra := *sar.Spec.ResourceAttributes
		s.asked = append(s.asked, ra)
		if sar.Spec.User != "alice" || !slices.Equal(sar.Spec.Groups, []string{"devs"}) || sar.Spec.Extra["scope"][0] != "x" {
			return true, nil, fmt.Errorf("review for the wrong identity: %+v", sar.Spec)
		}
		sar.Status.Allowed = s.allowed[ra.Resource+"/"+ra.Namespace+"/"+ra.Name]
		return true, sar, nil
	})
	return c
}

func TestReferenceChecker(t *testing.T) {
	alice := Requester{Username: "alice", Groups: []string{"devs"}, Extra: map[string][]string{"scope": {"x"}}}
	issuer := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
	cluster := issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "root"}
	tests := []struct {
		desc      string
		ref       issuers.Ref
		allowed   map[string]bool
		want      bool
		wantAsked []string // resource/namespace/name, in order
	}{
		{"allowed by name", issuer, map[string]bool{"signers/ns/ca": true}, true, []string{"signers/ns/ca"}},
		{"allowed by the wildcard name", issuer, map[string]bool{"signers/ns/*": true}, true, []string{"signers/ns/ca", "signers/ns/*"}},
		{"denied", issuer, map[string]bool{"signers/other/ca": true}, false, []string{"signers/ns/ca", "signers/ns/*"}},
		{"cluster signers are cluster-scoped", cluster, map[string]bool{"clustersigners//root": true}, true, []string{"clustersigners//root"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := &sarServer{allowed: tt.allowed}
			r := NewReferenceChecker(s.client())
			for i := 0; i < 2; i++ { // the second answer comes from the cache
				got, err := r.MayReference(context.Background(), alice, tt.ref)
				if err != nil || got != tt.want {
					t.Fatalf("MayReference = %v, %v; want %v", got, err, tt.want)
				}
			}
			var asked []string
			for _, a := range s.asked {
				if a.Group != wire.Group || a.Verb != wire.ReferenceVerb {
					t.Errorf("asked %+v", a)
				}
				asked = append(asked, a.Resource+"/"+a.Namespace+"/"+a.Name)
			}
			if !slices.Equal(asked, tt.wantAsked) {
				t.Errorf("asked %v, want %v (once: the second decision is cached)", asked, tt.wantAsked)
			}
		})
	}

	s := &sarServer{err: errors.New("kube-apiserver unreachable")}
	if _, err := NewReferenceChecker(s.client()).MayReference(context.Background(), alice, issuer); err == nil {
		t.Error("a failed review must be an error, not a decision")
	}
}

func TestSecretGetter(t *testing.T) {
	kube := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "key"}, Data: map[string][]byte{"tls.key": []byte("k")}})
	g := NewSecretGetter(kube)
	if data, found, err := g.SecretData(context.Background(), "ns", "key"); err != nil || !found || string(data["tls.key"]) != "k" {
		t.Errorf("existing Secret: %v, %v, %v", data, found, err)
	}
	if _, found, err := g.SecretData(context.Background(), "ns", "absent"); err != nil || found {
		t.Errorf("missing Secret: found %v, err %v; want not found, no error", found, err)
	}
	kube.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	if _, _, err := g.SecretData(context.Background(), "ns", "key"); err == nil {
		t.Error("a failed GET must be an error")
	}
}
