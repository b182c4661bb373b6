package computed_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/signet-dev/signet/pkg/apis/certmanager"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/registry/certmanager/clustersigner"
	"github.com/signet-dev/signet/pkg/registry/certmanager/signer"
)

var selfSigned = map[string]interface{}{"selfSigned": map[string]interface{}{}}

// pagingFixtures are 16 Issuers — ns-0..ns-2 with i-0..i-4 each (even ones
// labelled tier=prod), and team-a/ca — and two ClusterIssuers, which no
// signers list may show.
func pagingFixtures() []runtime.Object {
	objs := []runtime.Object{
		issuer("Issuer", "team-a", "ca", nil, map[string]interface{}{"ca": map[string]interface{}{"secretName": "ca"}}),
		issuer("ClusterIssuer", "", "c-0", nil, selfSigned),
		issuer("ClusterIssuer", "", "c-1", nil, selfSigned),
	}
	for ns := range 3 {
		for i := range 5 {
			var lbls map[string]interface{}
			if i%2 == 0 {
				lbls = map[string]interface{}{"tier": "prod"}
			}
			objs = append(objs, issuer("Issuer", fmt.Sprintf("ns-%d", ns), fmt.Sprintf("i-%d", i), lbls, selfSigned))
		}
	}
	return objs
}

func allPagingNames() []string {
	var names []string
	for ns := range 3 {
		for i := range 5 {
			names = append(names, fmt.Sprintf("ns-%d/i-%d", ns, i))
		}
	}
	return append(names, "team-a/ca")
}

// listPages lists with limit until the last page, and returns every page.
func listPages(t *testing.T, r interface {
	List(context.Context, *metainternalversion.ListOptions) (runtime.Object, error)
}, ctx context.Context, opts metainternalversion.ListOptions) []*certmanager.SignerList {
	t.Helper()
	var pages []*certmanager.SignerList
	for {
		obj, err := r.List(ctx, &opts)
		if err != nil {
			t.Fatalf("page %d: %v", len(pages)+1, err)
		}
		l := obj.(*certmanager.SignerList)
		pages = append(pages, l)
		if l.Continue == "" {
			return pages
		}
		if len(pages) > 100 {
			t.Fatal("more than 100 pages")
		}
		opts.Continue = l.Continue
	}
}

func names(l *certmanager.SignerList) []string {
	var out []string
	for _, s := range l.Items {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	return out
}

func equal(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func remaining(l *certmanager.SignerList) string {
	if l.RemainingItemCount == nil {
		return "unset"
	}
	return strconv.FormatInt(*l.RemainingItemCount, 10)
}

func TestListPagesCoverEveryItemOnceAtOneVersion(t *testing.T) {
	c, _ := startCache(t, pagingFixtures()...)
	r := signer.NewREST(c)
	all := allPagingNames()
	tests := []struct {
		desc          string
		ctx           context.Context
		opts          metainternalversion.ListOptions
		wantPages     [][]string
		wantRemaining []string
	}{
		{
			desc: "all namespaces, limit 5", ctx: context.Background(), opts: metainternalversion.ListOptions{Limit: 5},
			wantPages:     [][]string{all[0:5], all[5:10], all[10:15], all[15:]},
			wantRemaining: []string{"11", "6", "1", "unset"},
		},
		{
			desc: "limit equal to the number of items: one page", ctx: context.Background(), opts: metainternalversion.ListOptions{Limit: 16},
			wantPages: [][]string{all}, wantRemaining: []string{"unset"},
		},
		{
			desc: "no limit: one page", ctx: context.Background(),
			wantPages: [][]string{all}, wantRemaining: []string{"unset"},
		},
		{
			desc: "one namespace, limit 2", ctx: nsCtx("ns-1"), opts: metainternalversion.ListOptions{Limit: 2},
			wantPages:     [][]string{{"ns-1/i-0", "ns-1/i-1"}, {"ns-1/i-2", "ns-1/i-3"}, {"ns-1/i-4"}},
			wantRemaining: []string{"3", "1", "unset"},
		},
		{
			// With a selector the count of what follows is unknown to the
			// API's contract, so remainingItemCount stays unset.
			desc: "label selector, limit 4", ctx: context.Background(),
			opts: metainternalversion.ListOptions{Limit: 4, LabelSelector: labels.SelectorFromSet(labels.Set{"tier": "prod"})},
			wantPages: [][]string{
				{"ns-0/i-0", "ns-0/i-2", "ns-0/i-4", "ns-1/i-0"},
				{"ns-1/i-2", "ns-1/i-4", "ns-2/i-0", "ns-2/i-2"},
				{"ns-2/i-4"},
			},
			wantRemaining: []string{"unset", "unset", "unset"},
		},
	}
	for _, tt := range tests {
		pages := listPages(t, r, tt.ctx, tt.opts)
		if len(pages) != len(tt.wantPages) {
			var got [][]string
			for _, p := range pages {
				got = append(got, names(p))
			}
			t.Errorf("%s: pages %v, want %v", tt.desc, got, tt.wantPages)
			continue
		}
		for i, p := range pages {
			if !equal(names(p), tt.wantPages[i]) {
				t.Errorf("%s: page %d = %v, want %v", tt.desc, i+1, names(p), tt.wantPages[i])
			}
			if got := remaining(p); got != tt.wantRemaining[i] {
				t.Errorf("%s: page %d remainingItemCount = %s, want %s", tt.desc, i+1, got, tt.wantRemaining[i])
			}
			if p.ResourceVersion != pages[0].ResourceVersion {
				t.Errorf("%s: page %d at resourceVersion %s, the first at %s", tt.desc, i+1, p.ResourceVersion, pages[0].ResourceVersion)
			}
		}
	}

	// ClusterSigners page the same way and never show Issuers.
	obj, err := clustersigner.NewREST(c).List(context.Background(), &metainternalversion.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	cl := obj.(*certmanager.ClusterSignerList)
	if len(cl.Items) != 1 || cl.Items[0].Name != "c-0" || cl.Continue == "" || remaining(&certmanager.SignerList{ListMeta: cl.ListMeta}) != "1" {
		t.Fatalf("clustersigners page 1 = %+v", cl)
	}
	obj, err = clustersigner.NewREST(c).List(context.Background(), &metainternalversion.ListOptions{Limit: 1, Continue: cl.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if cl := obj.(*certmanager.ClusterSignerList); len(cl.Items) != 1 || cl.Items[0].Name != "c-1" || cl.Continue != "" {
		t.Fatalf("clustersigners page 2 = %+v", cl)
	}
}

// waitFor polls until cond holds for the read model.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestContinueResumesTheFirstPagesSnapshotAcrossChanges(t *testing.T) {
	c, dyn := startCache(t, pagingFixtures()...)
	r := signer.NewREST(c)
	ctx := context.Background()
	first, err := r.List(ctx, &metainternalversion.ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	p1 := first.(*certmanager.SignerList)

	// After the first page: one issuer the next pages hold is deleted, one
	// is added where they would show it, one is relabelled.
	res := dyn.Resource(issuers.IssuerGVR)
	if err := res.Namespace("ns-1").Delete(ctx, "i-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Namespace("ns-1").Create(ctx, issuer("Issuer", "ns-1", "i-00", nil, selfSigned), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Namespace("ns-2").Update(ctx, issuer("Issuer", "ns-2", "i-1", map[string]interface{}{"tier": "new"}, selfSigned), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the three changes in the read model", func() bool {
		_, deleted := c.Get(issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns-1", Name: "i-0"})
		_, added := c.Get(issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns-1", Name: "i-00"})
		s, ok := c.Get(issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns-2", Name: "i-1"})
		return !deleted && added && ok && s.Issuer.Labels["tier"] == "new"
	})

	rest := listPages(t, r, ctx, metainternalversion.ListOptions{Limit: 5, Continue: p1.Continue})
	got := names(p1)
	for _, p := range rest {
		got = append(got, names(p)...)
		if p.ResourceVersion != p1.ResourceVersion {
			t.Errorf("a later page is at resourceVersion %s, the first at %s", p.ResourceVersion, p1.ResourceVersion)
		}
		for _, s := range p.Items {
			if s.Namespace == "ns-2" && s.Name == "i-1" && s.Labels["tier"] != "" {
				t.Errorf("ns-2/i-1 shows the label set after the first page: %v", s.Labels)
			}
		}
	}
	if want := allPagingNames(); !equal(got, want) {
		t.Errorf("pages after changes = %v, want the first page's snapshot %v", got, want)
	}

	// A new list sees the changes.
	obj, err := r.List(ctx, &metainternalversion.ListOptions{FieldSelector: nil, LabelSelector: labels.SelectorFromSet(labels.Set{"tier": "new"})})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(obj.(*certmanager.SignerList)); !equal(n, []string{"ns-2/i-1"}) {
		t.Errorf("a new list with tier=new = %v", n)
	}

	// resourceVersionMatch=Exact reads the same snapshot in one piece.
	obj, err = r.List(ctx, &metainternalversion.ListOptions{ResourceVersion: p1.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(obj.(*certmanager.SignerList)); !equal(n, allPagingNames()) {
		t.Errorf("list at the first page's version (Exact) = %v", n)
	}
}

func TestContinueTooOldIsGoneWithATokenForTheRest(t *testing.T) {
	c, dyn := startCacheWith(t, issuers.Options{HistorySize: 3}, pagingFixtures()...)
	r := signer.NewREST(c)
	ctx := context.Background()
	first, err := r.List(ctx, &metainternalversion.ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	p1 := first.(*certmanager.SignerList)

	// Four changes push the first page's version out of a history of three.
	for i := range 4 {
		if _, err := dyn.Resource(issuers.IssuerGVR).Namespace("ns-9").Create(ctx, issuer("Issuer", "ns-9", fmt.Sprintf("n-%d", i), nil, selfSigned), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the four new issuers", func() bool {
		_, ok := c.Get(issuers.Ref{Kind: issuers.KindIssuer, Namespace: "ns-9", Name: "n-3"})
		return ok
	})
	_, err = r.List(ctx, &metainternalversion.ListOptions{Limit: 5, Continue: p1.Continue})
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("continue after the snapshot left the history: err = %v, want 410 Expired", err)
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Code != 410 || status.Status().ListMeta.Continue == "" {
		t.Fatalf("410 status = %+v, want code 410 with a continue token", status)
	}
	// That token reads the rest as it is now: after ns-0/i-4, new issuers included.
	rest := listPages(t, r, ctx, metainternalversion.ListOptions{Limit: 100, Continue: status.Status().ListMeta.Continue})
	want := append(allPagingNames()[5:15], "ns-9/n-0", "ns-9/n-1", "ns-9/n-2", "ns-9/n-3", "team-a/ca")
	if len(rest) != 1 || !equal(names(rest[0]), want) {
		t.Errorf("the rest with the 410's token = %v, want %v", names(rest[0]), want)
	}

	// A restarted signet (a new read model) refuses the old process's
	// tokens, and the old one refuses the new one's.
	c2, _ := startCache(t, pagingFixtures()...)
	r2 := signer.NewREST(c2)
	if _, err := r2.List(ctx, &metainternalversion.ListOptions{Limit: 5, Continue: p1.Continue}); !apierrors.IsResourceExpired(err) {
		t.Errorf("an earlier process's token: err = %v, want 410 Expired", err)
	}
	newer, err := r2.List(ctx, &metainternalversion.ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(ctx, &metainternalversion.ListOptions{Limit: 5, Continue: newer.(*certmanager.SignerList).Continue}); !apierrors.IsResourceExpired(err) {
		t.Errorf("a later process's token: err = %v, want 410 Expired", err)
	}
}

func TestListOptionsThatCannotBeServedAreBadRequests(t *testing.T) {
	c, _ := startCache(t, pagingFixtures()...)
	r := signer.NewREST(c)
	first, err := r.List(context.Background(), &metainternalversion.ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	token := first.(*certmanager.SignerList).Continue
	tests := []struct {
		desc string
		opts metainternalversion.ListOptions
	}{
		{"continue that is not base64", metainternalversion.ListOptions{Limit: 5, Continue: "%%%"}},
		{"continue that is not JSON", metainternalversion.ListOptions{Limit: 5, Continue: "bm90IGpzb24"}},
		{"continue without a position", metainternalversion.ListOptions{Limit: 5, Continue: "eyJydiI6NX0"}}, // {"rv":5}
		{"continue with a resourceVersion", metainternalversion.ListOptions{Limit: 5, Continue: token, ResourceVersion: "12"}},
		{"Exact with a resourceVersion that is not a number", metainternalversion.ListOptions{ResourceVersion: "x", ResourceVersionMatch: metav1.ResourceVersionMatchExact}},
	}
	for _, tt := range tests {
		if _, err := r.List(context.Background(), &tt.opts); !apierrors.IsBadRequest(err) {
			t.Errorf("%s: err = %v, want 400", tt.desc, err)
		}
	}
	// resourceVersion "0" ("any") may go with continue, as on kube-apiserver.
	if _, err := r.List(context.Background(), &metainternalversion.ListOptions{Limit: 5, Continue: token, ResourceVersion: "0"}); err != nil {
		t.Errorf("continue with resourceVersion 0: %v", err)
	}
}

func TestTableKeepsContinueAndRemainingItemCount(t *testing.T) {
	c, _ := startCache(t, pagingFixtures()...)
	r := signer.NewREST(c)
	list, err := r.List(context.Background(), &metainternalversion.ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := r.ConvertToTable(context.Background(), list, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := list.(*certmanager.SignerList)
	if len(tbl.Rows) != 5 || tbl.Continue != l.Continue || tbl.Continue == "" || tbl.RemainingItemCount == nil || *tbl.RemainingItemCount != 11 ||
		tbl.ResourceVersion != l.ResourceVersion {
		t.Errorf("table: %d rows, continue %q, remaining %v, rv %s; list: continue %q, rv %s",
			len(tbl.Rows), tbl.Continue, tbl.RemainingItemCount, tbl.ResourceVersion, l.Continue, l.ResourceVersion)
	}
}
