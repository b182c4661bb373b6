package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	certmanagerv1alpha1 "github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/test/framework"
)

// signScenario measures the synchronous sign subresource through
// kube-apiserver's aggregation layer, n requests from `writers` concurrent
// clients, next to a get of the same signer the same way: the cost of
// reaching signet at all, which signing can only add to.
func (b *bench) signScenario(ctx context.Context, n int) ([]result, error) {
	signers := versioned.NewForConfigOrDie(b.cfg).CertManagerV1alpha1().Signers("bench")
	sr := &certmanagerv1alpha1.SigningRequest{Spec: certmanagerv1alpha1.SigningRequestSpec{
		Request: b.keys[0].request, Usages: []string{"digital signature", "client auth"}}}
	get := func(ctx context.Context) error {
		_, err := signers.Get(ctx, "ca", metav1.GetOptions{})
		return err
	}
	sign := func(ctx context.Context) error {
		out, err := signers.Sign(ctx, "ca", sr, metav1.CreateOptions{})
		if err == nil && len(out.Status.Certificate) == 0 {
			err = fmt.Errorf("sign returned no certificate")
		}
		return err
	}
	var results []result
	for _, op := range []struct {
		key, name string
		call      func(context.Context) error
	}{{"get", "get signers/ca (reference)", get}, {"sign", "sign signers/ca/sign (P-256)", sign}} {
		// Warm up connections and signet's authorization cache first.
		if err := framework.Parallel(ctx, b.writers, b.writers, func(ctx context.Context, _ int) error { return op.call(ctx) }); err != nil {
			return results, fmt.Errorf("%s: %w", op.name, err)
		}
		r, err := load(ctx, n, b.writers, op.call)
		r.Scenario, r.SubjectKey, r.Subject = "sign-subresource", op.key, op.name
		results = append(results, r)
		if err != nil {
			return results, fmt.Errorf("%s: %w", op.name, err)
		}
	}
	return results, nil
}

// load calls f n times from `clients` concurrent callers and measures each
// call and the whole.
func load(ctx context.Context, n, clients int, f func(context.Context) error) (result, error) {
	lat := make([]float64, n) // one writer per index
	start := time.Now()
	err := framework.Parallel(ctx, n, clients, func(ctx context.Context, i int) error {
		t := time.Now()
		err := f(ctx)
		lat[i] = ms(time.Since(t))
		return err
	})
	wall := time.Since(start)
	if err != nil {
		return result{}, err
	}
	sort.Float64s(lat)
	return result{N: n, PerSecond: float64(n) / wall.Seconds(), P50Millis: pct(lat, 0.5), P95Millis: pct(lat, 0.95),
		P99Millis: pct(lat, 0.99), WallMillis: ms(wall)}, nil
}

// pct is the p-quantile of sorted.
func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}
