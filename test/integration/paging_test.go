package integration

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/issuers"
)

// Chunked lists of signers through kube-apiserver's aggregator: kubectl
// pages them as it pages everything, every page of one list comes from one
// snapshot, and a token from before a signet restart is 410 Gone.

// pagingSigners creates n SelfSigned Issuers p-00.. in namespace
// pagingNamespace and waits until signet lists them all.
func pagingSigners(t *testing.T, pagingNamespace string, n int) []string {
	t.Helper()
	createNamespace(t, pagingNamespace)
	var names []string
	for i := range n {
		name := fmt.Sprintf("p-%02d", i)
		createIssuer(t, pagingNamespace, name, nil, map[string]interface{}{"selfSigned": map[string]interface{}{}})
		names = append(names, pagingNamespace+"/"+name)
	}
	eventually(t, fmt.Sprintf("signet to list %d signers in %s", n, pagingNamespace), func() (bool, error) {
		l, err := env.signer.CertManagerV1alpha1().Signers(pagingNamespace).List(context.Background(), metav1.ListOptions{})
		return err == nil && len(l.Items) == n, err
	})
	return names
}

func signerNames(items []v1alpha1.Signer) []string {
	var out []string
	for _, s := range items {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	return out
}

var requestURL = regexp.MustCompile(`url="([^"]+)"|(GET|POST) (https://\S+)`)

// listRequests is the URLs of the signers lists in kubectl -v=6's log.
func listRequests(stderr string) []string {
	var urls []string
	for _, m := range requestURL.FindAllStringSubmatch(stderr, -1) {
		u := m[1] + m[3]
		if strings.Contains(u, "/apis/cert-manager.io/v1alpha1/") && strings.Contains(u, "signers") && !strings.Contains(u, "/signers/") {
			urls = append(urls, u)
		}
	}
	return urls
}

func TestKubectlPagesSigners(t *testing.T) {
	const pagingNamespace = "paging-kubectl"
	want := pagingSigners(t, pagingNamespace, 25)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// kubectl asks for 500 per request, as it does for every resource.
	_, stderr, err := env.cp.Kubectl(ctx, "get", "signers", "-A", "-v=6")
	if err != nil {
		t.Fatalf("kubectl get signers -A: %v\n%s", err, stderr)
	}
	reqs := listRequests(stderr)
	if len(reqs) != 1 || !strings.Contains(reqs[0], "limit=500") {
		t.Errorf("kubectl get signers -A sent %v, want one list with limit=500", reqs)
	}

	// With 10 per request, 25 signers take three, the later two continued.
	out, stderr, err := env.cp.Kubectl(ctx, "get", "signers", "-n", pagingNamespace, "--chunk-size=10", "-v=6")
	if err != nil {
		t.Fatalf("kubectl get signers --chunk-size=10: %v\n%s", err, stderr)
	}
	reqs = listRequests(stderr)
	if len(reqs) != 3 {
		t.Fatalf("kubectl --chunk-size=10 sent %d lists, want 3: %v", len(reqs), reqs)
	}
	for i, u := range reqs {
		if !strings.Contains(u, "limit=10") || strings.Contains(u, "continue=") != (i > 0) {
			t.Errorf("request %d = %s, want limit=10 and continue on all but the first", i+1, u)
		}
	}
	got := rows(out, 1)
	if len(got) != len(want) {
		t.Errorf("kubectl listed %d signers in pages, want %d:\n%s", len(got), len(want), out)
	}
	for _, n := range want {
		if _, ok := got[strings.TrimPrefix(n, pagingNamespace+"/")]; !ok {
			t.Errorf("kubectl's paged output lacks %s", n)
		}
	}
}

func TestSignerPagesComeFromOneSnapshotAndExpireWithTheProcess(t *testing.T) {
	const pagingNamespace = "paging-snapshot"
	want := pagingSigners(t, pagingNamespace, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	signers := env.signer.CertManagerV1alpha1().Signers(pagingNamespace)

	p1, err := signers.List(ctx, metav1.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := signerNames(p1.Items); strings.Join(got, " ") != strings.Join(want[:10], " ") {
		t.Fatalf("page 1 = %v, want %v", got, want[:10])
	}
	if p1.Continue == "" || p1.RemainingItemCount == nil || *p1.RemainingItemCount != 15 {
		t.Fatalf("page 1: continue %q, remainingItemCount %v; want a token and 15", p1.Continue, p1.RemainingItemCount)
	}

	// Between pages, delete an issuer the next page holds and add one it would show.
	if err := env.dyn.Resource(issuers.IssuerGVR).Namespace(pagingNamespace).Delete(ctx, "p-12", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	createIssuer(t, pagingNamespace, "p-12a", nil, map[string]interface{}{"selfSigned": map[string]interface{}{}})
	eventually(t, "signet to see p-12 deleted and p-12a created", func() (bool, error) {
		l, err := signers.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		names := strings.Join(signerNames(l.Items), " ")
		return !strings.Contains(names, "/p-12 ") && strings.Contains(names, "/p-12a"), nil
	})

	p2, err := signers.List(ctx, metav1.ListOptions{Limit: 10, Continue: p1.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if got := signerNames(p2.Items); strings.Join(got, " ") != strings.Join(want[10:20], " ") {
		t.Errorf("page 2 after changes = %v, want the first page's snapshot %v", got, want[10:20])
	}
	if p2.ResourceVersion != p1.ResourceVersion || p2.RemainingItemCount == nil || *p2.RemainingItemCount != 5 {
		t.Errorf("page 2: resourceVersion %s (page 1: %s), remainingItemCount %v (want 5)", p2.ResourceVersion, p1.ResourceVersion, p2.RemainingItemCount)
	}

	// A restarted signet holds no snapshot of the old process: 410, with a
	// token that reads the rest as it is now.
	if err := env.signet.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var expired error
	eventually(t, "the restarted signet to answer the old token", func() (bool, error) {
		_, expired = signers.List(ctx, metav1.ListOptions{Limit: 10, Continue: p2.Continue})
		return expired != nil && !apierrors.IsServiceUnavailable(expired), nil
	})
	status, ok := expired.(apierrors.APIStatus)
	if !apierrors.IsResourceExpired(expired) || !ok || status.Status().Code != 410 || status.Status().ListMeta.Continue == "" {
		t.Fatalf("continue after a restart: err = %v, want 410 Expired carrying a continue token", expired)
	}
	rest, err := signers.List(ctx, metav1.ListOptions{Limit: 10, Continue: status.Status().ListMeta.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if got := signerNames(rest.Items); strings.Join(got, " ") != strings.Join(want[20:], " ") {
		t.Errorf("the rest with the 410's token = %v, want %v", got, want[20:])
	}
}
