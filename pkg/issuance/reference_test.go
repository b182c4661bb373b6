package issuance

import (
	"testing"

	"github.com/signet-dev/signet/pkg/issuers"
)

// The cache key must change with anything that can change the decision, and
// not with the order of groups or extra keys.
func TestReferenceKey(t *testing.T) {
	csr := func(user, uid string, groups []string, extra map[string][]string) Requester {
		return Requester{Username: user, UID: uid, Groups: groups, Extra: extra}
	}
	ref := issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "ca"}
	base := referenceKey(csr("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref)
	if k := referenceKey(csr("alice", "1", []string{"b", "a"}, map[string][]string{"y": {"2"}, "x": {"1"}}), ref); k != base {
		t.Errorf("order changed the key: %s vs %s", k, base)
	}
	for desc, k := range map[string]string{
		"user":      referenceKey(csr("bob", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref),
		"uid":       referenceKey(csr("alice", "2", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref),
		"groups":    referenceKey(csr("alice", "1", []string{"a"}, map[string][]string{"x": {"1"}, "y": {"2"}}), ref),
		"extra":     referenceKey(csr("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}}), ref),
		"name":      referenceKey(csr("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns", Name: "other"}),
		"namespace": referenceKey(csr("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), issuers.Ref{Kind: issuers.KindIssuer, Namespace: "other", Name: "ca"}),
		"kind":      referenceKey(csr("alice", "1", []string{"a", "b"}, map[string][]string{"x": {"1"}, "y": {"2"}}), issuers.Ref{Kind: issuers.KindClusterIssuer, Name: "ca"}),
	} {
		if k == base {
			t.Errorf("a different %s gives the same key", desc)
		}
	}
	// "a,b" as one group must not collide with groups "a" and "b".
	if referenceKey(csr("alice", "1", []string{"a,b"}, nil), ref) == referenceKey(csr("alice", "1", []string{"a", "b"}, nil), ref) {
		t.Error("group boundaries are ambiguous in the key")
	}
}
