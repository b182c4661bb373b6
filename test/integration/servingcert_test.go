package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/pkg/servingcert"
	"github.com/signet-dev/signet/test/framework"
)

// servingCASyncPeriod is the --serving-ca-sync-period the self-managed
// replicas run with: a replica's CA unrenewed for StaleAfterPeriods of it is
// dropped, 5 s here instead of 5 min.
const servingCASyncPeriod = time.Second

const servingCANamespace = "servingcert"

// TestSelfManagedServingCA: without --tls-cert-file signet generates its
// serving CA, puts it in the APIService's empty caBundle with a heartbeat
// that it keeps renewing, and kube-apiserver then trusts it: the APIService
// is Available and signers are served through the aggregator, to kubectl
// and client-go. No other CA is in the bundle, so none of this works unless
// signet published its own.
func TestSelfManagedServingCA(t *testing.T) {
	ctx := context.Background()
	issuerForServingTests(t)
	useSelfManagedServing(t)
	s := framework.StartSignetT(t, env.cp, selfManagedOptions("signet-self"))

	svc := getSignetAPIService(t)
	if c := availableCondition(svc); c == nil || c.Status != apiregistrationv1.ConditionTrue {
		t.Errorf("APIService %s condition Available = %+v, want True", svc.Name, c)
	}
	cas := bundleCAs(t, svc.Spec.CABundle)
	if len(cas) != 1 {
		t.Fatalf("caBundle holds %d CAs, want only the one signet generated", len(cas))
	}
	ca := cas[0]
	if !ca.IsCA || !strings.HasPrefix(ca.Subject.CommonName, "signet-serving-ca@") || ca.CheckSignatureFrom(ca) != nil {
		t.Errorf("caBundle holds %q (isCA %v), want a self-signed signet-serving-ca@…", ca.Subject.CommonName, ca.IsCA)
	}
	if bytes.Contains(svc.Spec.CABundle, env.cp.PKI.SignetCA.CertPEM) {
		t.Error("caBundle still holds the framework's serving CA")
	}
	if hb := heartbeats(svc); !slices.Equal(slices.Sorted(maps.Keys(hb)), []string{servingcert.Fingerprint(ca)}) {
		t.Errorf("heartbeat annotations for %v, want one for the CA in the bundle, %s", slices.Sorted(maps.Keys(hb)), servingcert.Fingerprint(ca))
	}

	// The certificate signet serves is for the Service name kube-apiserver
	// dials, chains to that CA, and has the default 30-day lifetime.
	leaf := servingLeaf(t, s)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(ca), DNSName: framework.SignetServiceName + "." + framework.SignetNamespace + ".svc"}); err != nil {
		t.Errorf("signet's serving certificate does not verify against the caBundle: %v", err)
	}
	if leaf.NotAfter.Sub(time.Now()) > 31*24*time.Hour {
		t.Errorf("serving certificate valid until %s, longer than the 30-day default", leaf.NotAfter)
	}

	eventually(t, "kubectl get signers -A through kube-apiserver to list "+servingCANamespace+"/self", func() (bool, error) {
		err := kubectlListsSigner(ctx, servingCANamespace, "self")
		return err == nil, err
	})
	if err := clientGoListsSigner(ctx, servingCANamespace, "self"); err != nil {
		t.Errorf("client-go list of signers through kube-apiserver: %v", err)
	}

	// The heartbeat is renewed every sync period.
	first := heartbeats(getSignetAPIService(t))[servingcert.Fingerprint(ca)]
	eventually(t, "the heartbeat to be renewed", func() (bool, error) {
		hb, ok := heartbeats(getSignetAPIService(t))[servingcert.Fingerprint(ca)]
		return ok && hb.After(first), nil
	})
}

// TestSelfManagedServingCAAcrossReplicas runs two self-managed replicas, A
// behind the APIService and B beside it: the caBundle holds both their CAs,
// each with its heartbeat, and each replica's certificate verifies against
// it. B is then SIGKILLed: A drops B's CA and heartbeat once B's last
// heartbeat is older than the staleness window, not before, and the API
// answers through kube-apiserver throughout.
func TestSelfManagedServingCAAcrossReplicas(t *testing.T) {
	const staleAfter = servingcert.StaleAfterPeriods * servingCASyncPeriod
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	issuerForServingTests(t)
	useSelfManagedServing(t)
	a := framework.StartSignetT(t, env.cp, selfManagedOptions("signet-self-a"))
	bOpts := selfManagedOptions("signet-self-b")
	bOpts.Unregistered = true
	b := framework.StartSignetT(t, env.cp, bOpts)

	caA, caB := servingCAOf(t, a), servingCAOf(t, b)
	fpA, fpB := servingcert.Fingerprint(caA), servingcert.Fingerprint(caB)
	if fpA == fpB {
		t.Fatal("both replicas serve with the same CA")
	}
	eventually(t, "the caBundle to hold exactly A's and B's CAs, each with a fresh heartbeat", func() (bool, error) {
		svc := getSignetAPIService(t)
		got := fingerprintsOf(bundleCAs(t, svc.Spec.CABundle))
		hb := heartbeats(svc)
		fresh := time.Since(hb[fpA]) <= staleAfter && time.Since(hb[fpB]) <= staleAfter
		want := slices.Sorted(slices.Values([]string{fpA, fpB}))
		ok := slices.Equal(slices.Sorted(slices.Values(got)), want) && slices.Equal(slices.Sorted(maps.Keys(hb)), want) && fresh
		return ok, fmt.Errorf("bundle %v, heartbeats %v; want A's %s and B's %s", got, hb, fpA, fpB)
	})
	bundle := getSignetAPIService(t).Spec.CABundle
	for name, r := range map[string]*framework.Signet{"A": a, "B": b} {
		if _, err := servingLeaf(t, r).Verify(x509.VerifyOptions{Roots: poolOf(bundleCAs(t, bundle)...), DNSName: framework.SignetServiceName + "." + framework.SignetNamespace + ".svc"}); err != nil {
			t.Errorf("replica %s's serving certificate does not verify against the shared caBundle: %v", name, err)
		}
	}
	eventually(t, "kubectl get signers -A through kube-apiserver to list "+servingCANamespace+"/self", func() (bool, error) {
		err := kubectlListsSigner(ctx, servingCANamespace, "self")
		return err == nil, err
	})

	// From before the kill until a little after the drop: the signers API
	// through kube-apiserver, by kubectl and client-go.
	monitorCtx, stopMonitors := context.WithCancel(ctx)
	var monitors sync.WaitGroup
	defer func() {
		stopMonitors()
		monitors.Wait()
	}()
	var viaKubectl, viaClientGo apiProbe
	monitors.Go(func() {
		viaKubectl.run(monitorCtx, 100*time.Millisecond, listsSigner(kubectlListsSigner, servingCANamespace, "self"))
	})
	monitors.Go(func() {
		viaClientGo.run(monitorCtx, 50*time.Millisecond, listsSigner(clientGoListsSigner, servingCANamespace, "self"))
	})

	// B's last heartbeat is the last value seen before its CA went.
	var lastB time.Time
	if hb, ok := heartbeats(getSignetAPIService(t))[fpB]; ok {
		lastB = hb
	}
	killedAt := time.Now()
	b.Kill()
	var droppedAt time.Time
	var svc *apiregistrationv1.APIService
	apiServices := aggregator.NewForConfigOrDie(env.cp.AdminConfig).ApiregistrationV1().APIServices()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, staleAfter+30*time.Second, true, func(ctx context.Context) (bool, error) {
		cur, err := apiServices.Get(ctx, framework.SignetAPIServiceName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if hb, ok := heartbeats(cur)[fpB]; ok && hb.After(lastB) {
			lastB = hb
		}
		if slices.Contains(fingerprintsOf(bundleCAs(t, cur.Spec.CABundle)), fpB) {
			return false, nil
		}
		droppedAt, svc = time.Now(), cur
		return true, nil
	})
	if err != nil {
		t.Fatalf("B's CA %s still in the caBundle %s after B was killed (staleness window %s)", fpB, time.Since(killedAt).Round(time.Millisecond), staleAfter)
	}
	t.Logf("B killed; its last heartbeat %s; its CA dropped (seen) %s after the kill, %s after that heartbeat",
		lastB.Format(time.RFC3339), droppedAt.Sub(killedAt).Round(time.Millisecond), droppedAt.Sub(lastB).Round(time.Millisecond))
	if lastB.IsZero() {
		t.Error("B's CA was in the bundle without a heartbeat")
	} else if silent := droppedAt.Sub(lastB); silent <= staleAfter {
		t.Errorf("B's CA dropped %s after its last heartbeat, within the staleness window %s", silent, staleAfter)
	}
	// B heartbeats at most a sync period before it dies; A notices on its
	// first sync after the window, and the heartbeat is written to the second.
	if late := droppedAt.Sub(killedAt); late > staleAfter+2*servingCASyncPeriod+time.Second+5*time.Second {
		t.Errorf("B's CA dropped %s after the kill, want about the %s staleness window", late, staleAfter)
	}
	if got := fingerprintsOf(bundleCAs(t, svc.Spec.CABundle)); !slices.Equal(got, []string{fpA}) {
		t.Errorf("after B went the caBundle holds %v, want only A's %s", got, fpA)
	}
	hb := heartbeats(svc)
	if _, ok := hb[fpB]; ok {
		t.Errorf("B's heartbeat annotation stayed after its CA was dropped: %v", hb)
	}
	if since := time.Since(hb[fpA]); since > staleAfter {
		t.Errorf("A's heartbeat %s is %s old: A stopped renewing it", hb[fpA], since)
	}

	// Keep asking a little after the drop: kube-apiserver reloads the bundle.
	kubectlAtDrop, _, _, _ := viaKubectl.get()
	clientGoAtDrop, _, _, _ := viaClientGo.get()
	eventually(t, "three more requests of each kind after the drop", func() (bool, error) {
		k, _, _, _ := viaKubectl.get()
		c, _, _, _ := viaClientGo.get()
		return k >= kubectlAtDrop+3 && c >= clientGoAtDrop+3, nil
	})
	stopMonitors()
	monitors.Wait()
	for _, p := range []struct {
		what  string
		probe *apiProbe
	}{{"kubectl get signers -A", &viaKubectl}, {"client-go list signers", &viaClientGo}} {
		p.probe.report(t, p.what, "while B was killed and its CA dropped")
	}
	if c := availableCondition(getSignetAPIService(t)); c == nil || c.Status != apiregistrationv1.ConditionTrue {
		t.Errorf("APIService condition Available = %+v after B's CA was dropped, want True", c)
	}
}

// issuerForServingTests makes the Issuer whose signer the tests list through
// kube-apiserver.
func issuerForServingTests(t *testing.T) {
	t.Helper()
	createNamespace(t, servingCANamespace)
	// Left from an earlier run in this process (-count): keep it.
	_, err := env.dyn.Resource(issuers.IssuerGVR).Namespace(servingCANamespace).Get(context.Background(), "self", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		createIssuer(t, servingCANamespace, "self", nil, selfSignedSpec())
	} else if err != nil {
		t.Fatal(err)
	}
}

func selfManagedOptions(name string) framework.SignetOptions {
	return framework.SignetOptions{Name: name, SelfManagedServing: true,
		ExtraArgs: append(slices.Clone(baseSignetArgs), fmt.Sprintf("--serving-ca-sync-period=%s", servingCASyncPeriod))}
}

// useSelfManagedServing stops the shared signet and empties the APIService's
// caBundle, so that every CA in it afterwards was put there by a
// self-managed replica. When t ends, after the replicas' own cleanups have
// stopped them, their heartbeats are removed and the shared signet is put
// back with the framework's CA.
func useSelfManagedServing(t *testing.T) {
	t.Helper()
	env.signet.Stop()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := editSignetAPIService(ctx, func(s *apiregistrationv1.APIService) {
			for k := range s.Annotations {
				if strings.HasPrefix(k, servingcert.HeartbeatPrefix) {
					delete(s.Annotations, k)
				}
			}
		}); err != nil {
			t.Errorf("removing the heartbeats: %v", err)
		}
		back, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: baseSignetArgs})
		if err != nil {
			t.Errorf("restarting the shared signet: %v", err)
			return
		}
		env.signet = back
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := editSignetAPIService(ctx, func(s *apiregistrationv1.APIService) {
		s.Spec.CABundle = nil
		for k := range s.Annotations {
			if strings.HasPrefix(k, servingcert.HeartbeatPrefix) {
				delete(s.Annotations, k)
			}
		}
	}); err != nil {
		t.Fatalf("emptying the caBundle: %v", err)
	}
}

func editSignetAPIService(ctx context.Context, edit func(*apiregistrationv1.APIService)) error {
	apiServices := aggregator.NewForConfigOrDie(env.cp.AdminConfig).ApiregistrationV1().APIServices()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := apiServices.Get(ctx, framework.SignetAPIServiceName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(s)
		_, err = apiServices.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

func getSignetAPIService(t *testing.T) *apiregistrationv1.APIService {
	t.Helper()
	s, err := aggregator.NewForConfigOrDie(env.cp.AdminConfig).ApiregistrationV1().APIServices().Get(context.Background(), framework.SignetAPIServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func availableCondition(s *apiregistrationv1.APIService) *apiregistrationv1.APIServiceCondition {
	for i, c := range s.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return &s.Status.Conditions[i]
		}
	}
	return nil
}

func fingerprintsOf(cas []*x509.Certificate) []string {
	var out []string
	for _, c := range cas {
		out = append(out, servingcert.Fingerprint(c))
	}
	return out
}

// heartbeats are the APIService's heartbeat annotations, by fingerprint; an
// unreadable one is the zero time.
func heartbeats(s *apiregistrationv1.APIService) map[string]time.Time {
	out := map[string]time.Time{}
	for k, v := range s.Annotations {
		if fp, ok := strings.CutPrefix(k, servingcert.HeartbeatPrefix); ok {
			out[fp], _ = time.Parse(time.RFC3339, v)
		}
	}
	return out
}

func bundleCAs(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("caBundle holds a %s block that is no certificate: %v", b.Type, err)
		}
		out = append(out, c)
	}
}

func poolOf(cas ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c)
	}
	return p
}

// servingLeaf is the certificate s serves, read from a TLS handshake.
func servingLeaf(t *testing.T, s *framework.Signet) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// servingCAOf is the CA in the APIService's caBundle that signs the
// certificate s serves.
func servingCAOf(t *testing.T, s *framework.Signet) *x509.Certificate {
	t.Helper()
	leaf := servingLeaf(t, s)
	for _, ca := range bundleCAs(t, getSignetAPIService(t).Spec.CABundle) {
		if bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	t.Fatalf("no CA in the caBundle signs the certificate served at %s", s.URL)
	return nil
}
