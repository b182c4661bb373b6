package computed

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/pkg/issuers"
)

// Chunked lists. Every page of one list is cut from the same snapshot: the
// read model's States at the first page's resource version. Later pages are
// rebuilt from the current States by undoing, newest first, the changes the
// read model's watch history holds since that version; a version the history
// no longer reaches (or one from another signet process) is 410 Gone, as a
// compacted etcd revision is for kube-apiserver.

// continueToken is where the next page starts: after the item at Namespace/Name
// in the snapshot at ResourceVersion. Clients treat it as opaque.
type continueToken struct {
	ResourceVersion uint64 `json:"rv"`
	Namespace       string `json:"ns,omitempty"`
	Name            string `json:"name"`
}

func (t continueToken) encode() string {
	b, _ := json.Marshal(t) // a struct of strings and a number cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err == nil && (t.ResourceVersion == 0 || t.Name == "") {
		err = errors.New("no resource version or position")
	}
	if err != nil {
		return continueToken{}, apierrors.NewBadRequest(fmt.Sprintf("continue token %q is not valid (%v): list again without continue", s, err))
	}
	return t, nil
}

// page is one chunk of a list: the matching States in order, the version of
// the snapshot they come from, and what the list's metadata says about the rest.
type page struct {
	states          []*issuers.State
	resourceVersion uint64
	continueToken   string
	// remaining is how many matching items follow, when it is known (the
	// list has no selectors, as the API's remainingItemCount requires).
	remaining *int64
}

// listPage cuts the page that opts ask for out of the snapshot they name.
// selective says whether the list has selectors.
func (r *REST) listPage(namespace string, opts *metainternalversion.ListOptions, match func(*issuers.State) bool, selective bool) (page, error) {
	var o metainternalversion.ListOptions
	if opts != nil {
		o = *opts
	}
	var (
		from     continueToken
		at       uint64 // 0: the current States
		resuming = o.Continue != ""
	)
	switch {
	case resuming:
		if o.ResourceVersion != "" && o.ResourceVersion != "0" {
			return page{}, apierrors.NewBadRequest("resourceVersion may not be set together with continue: the continue token names the snapshot")
		}
		t, err := decodeContinue(o.Continue)
		if err != nil {
			return page{}, err
		}
		from, at = t, t.ResourceVersion
	case o.ResourceVersionMatch == metav1.ResourceVersionMatchExact:
		rv, err := strconv.ParseUint(o.ResourceVersion, 10, 64)
		if err != nil || rv == 0 {
			return page{}, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q for resourceVersionMatch=Exact", o.ResourceVersion))
		}
		at = rv
	}

	states, rv, err := r.snapshot(namespace, at)
	if errors.Is(err, issuers.ErrExpired) {
		if resuming {
			return page{}, r.expiredContinue(from, rv)
		}
		return page{}, apierrors.NewResourceExpired(fmt.Sprintf("resourceVersion %s of %s: %v", o.ResourceVersion, r.res.Resource, err))
	}
	if err != nil {
		return page{}, apierrors.NewInternalError(err)
	}

	start := 0
	if resuming {
		start, _ = slices.BinarySearchFunc(states, from, func(s *issuers.State, t continueToken) int {
			return cmp.Or(cmp.Compare(s.Issuer.Namespace, t.Namespace), cmp.Compare(s.Issuer.Name, t.Name))
		})
		if start < len(states) && states[start].Issuer.Namespace == from.Namespace && states[start].Issuer.Name == from.Name {
			start++ // the token's item was the last of the previous page
		}
	}
	p := page{resourceVersion: rv}
	for i := start; i < len(states); i++ {
		s := states[i]
		if !match(s) {
			continue
		}
		if o.Limit > 0 && int64(len(p.states)) == o.Limit {
			last := p.states[len(p.states)-1].Issuer
			p.continueToken = continueToken{ResourceVersion: rv, Namespace: last.Namespace, Name: last.Name}.encode()
			if !selective {
				n := int64(len(states) - i)
				p.remaining = &n
			}
			break
		}
		p.states = append(p.states, s)
	}
	return p, nil
}

// snapshot returns the States of this resource in namespace ("" for all) as
// they were at resource version at (0: now), sorted by namespace and name,
// and the version they are current at. A version the read model's history no
// longer reaches is issuers.ErrExpired, with the current version.
func (r *REST) snapshot(namespace string, at uint64) ([]*issuers.State, uint64, error) {
	states, current := r.source.List(r.res.Kind, namespace)
	sortStates(states)
	if at == 0 || at == current {
		return states, current, nil
	}
	if at > current {
		return nil, current, issuers.ErrExpired // from another, later process
	}
	w, err := r.source.Watch(at)
	if err != nil {
		return nil, current, err
	}
	w.Stop()
	byRef := make(map[issuers.Ref]*issuers.State, len(states))
	for _, s := range states {
		byRef[s.Issuer.Ref] = s
	}
	for i := len(w.Backlog) - 1; i >= 0; i-- {
		e := w.Backlog[i]
		ref := e.State.Issuer.Ref
		if e.State.ResourceVersion > current || ref.Kind != r.res.Kind || (namespace != "" && ref.Namespace != namespace) {
			continue // after the List above, or not in this list
		}
		if e.Prev == nil {
			delete(byRef, ref)
		} else {
			byRef[ref] = e.Prev
		}
	}
	out := make([]*issuers.State, 0, len(byRef))
	for _, s := range byRef {
		out = append(out, s)
	}
	sortStates(out)
	return out, at, nil
}

// sortStates orders States as lists show them: by namespace, then name.
// Already sorted input (the read model's own order) costs one pass.
func sortStates(states []*issuers.State) {
	slices.SortFunc(states, func(a, b *issuers.State) int {
		return cmp.Or(cmp.Compare(a.Issuer.Namespace, b.Issuer.Namespace), cmp.Compare(a.Issuer.Name, b.Issuer.Name))
	})
}

// expiredContinue is the 410 for a continue token whose snapshot is gone. Like
// kube-apiserver's, it carries a token that continues after the same item in
// the current state, for clients that accept an inconsistent list.
func (r *REST) expiredContinue(t continueToken, current uint64) error {
	fresh := continueToken{ResourceVersion: current, Namespace: t.Namespace, Name: t.Name}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusGone,
		Reason: metav1.StatusReasonExpired,
		Message: fmt.Sprintf("the continue token's snapshot of %s (resourceVersion %d) is too old or from another signet process: "+
			"list again without continue, or continue with this response's metadata.continue to read the rest as it is now",
			r.res.Resource, t.ResourceVersion),
		ListMeta: metav1.ListMeta{Continue: fresh.encode()},
	}}
}
