package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

// caIssuers creates perNS CA Issuers in each of namespaces, issuer i reading
// its own Secret ca-<i> (all holding one CA), with 32 concurrent writers, and
// deletes them all when t ends.
func caIssuers(t *testing.T, namespaces []string, perNS int) {
	t.Helper()
	ca := newCA(t, testpki.CAOptions{CommonName: t.Name()})
	for _, ns := range namespaces {
		createNamespace(t, ns)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, ns := range namespaces {
			_ = env.dyn.Resource(issuers.IssuerGVR).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			_ = env.kube.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}
	})
	parallel(t, len(namespaces)*perNS, 32, func(ctx context.Context, i int) error {
		ns, name := namespaces[i%len(namespaces)], fmt.Sprintf("ca-%d", i)
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: ca.CertPEM(), corev1.TLSPrivateKeyKey: ca.KeyPEM()},
		}
		if _, err := env.kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
			"metadata": map[string]interface{}{"name": name, "namespace": ns},
			"spec":     caSpec(name),
		}}
		_, err := env.dyn.Resource(issuers.IssuerGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		return err
	})
}

// parallel runs framework.Parallel with a deadline and fails t on its error.
func parallel(t *testing.T, n, workers int, f func(ctx context.Context, i int) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := framework.Parallel(ctx, n, workers, f); err != nil {
		t.Fatal(err)
	}
}

// readySigners counts, through signet directly, the signers in namespaces
// with prefix and how many of them are Ready.
func readySigners(ctx context.Context, client versioned.Interface, prefix string) (total, ready int, err error) {
	list, err := client.CertManagerV1alpha1().Signers("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, err
	}
	for _, s := range list.Items {
		if !strings.HasPrefix(s.Namespace, prefix) {
			continue
		}
		total++
		for _, c := range s.Status.Conditions {
			if c.Type == "Ready" && c.Status == metav1.ConditionTrue {
				ready++
			}
		}
	}
	return total, ready, nil
}

func waitSignersReady(t *testing.T, prefix string, want int) {
	t.Helper()
	client := versioned.NewForConfigOrDie(env.signet.ClientConfig())
	var total, ready int
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		total, ready, last = readySigners(ctx, client, prefix)
		return ready == want, nil
	})
	if err != nil {
		t.Fatalf("signers in %s*: %d, %d ready, want %d ready (last error %v)", prefix, total, ready, want, last)
	}
}

// selfSignedIssuers creates perNS SelfSigned Issuers self-<i> in each of
// namespaces, and deletes them when t ends.
func selfSignedIssuers(t *testing.T, namespaces []string, perNS int) {
	t.Helper()
	for _, ns := range namespaces {
		createNamespace(t, ns)
	}
	t.Cleanup(func() {
		for _, ns := range namespaces {
			_ = env.dyn.Resource(issuers.IssuerGVR).Namespace(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
		}
	})
	parallel(t, len(namespaces)*perNS, 32, func(ctx context.Context, i int) error {
		ns := namespaces[i%len(namespaces)]
		u := &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
			"metadata": map[string]interface{}{"name": fmt.Sprintf("self-%d", i), "namespace": ns},
			"spec":     selfSignedSpec(),
		}}
		_, err := env.dyn.Resource(issuers.IssuerGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		return err
	})
}

// restartAndCheckAtFirstReady restarts the shared signet, polls its own
// /readyz every few milliseconds, and the moment it first answers OK lists
// the signers in namespaces with prefix and GETs each of names (namespace,
// name): all total must be there and Ready, none 404.
func restartAndCheckAtFirstReady(t *testing.T, prefix string, total int, names func(i int) (string, string)) {
	t.Helper()
	direct := kubernetes.NewForConfigOrDie(env.signet.ClientConfig())
	signers := versioned.NewForConfigOrDie(env.signet.ClientConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	restarted := make(chan error, 1)
	start := time.Now()
	go func() { restarted <- env.signet.Restart(ctx) }()
	for {
		probe, cancelProbe := context.WithTimeout(ctx, time.Second)
		_, err := direct.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(probe)
		cancelProbe()
		if err == nil {
			break
		}
		select {
		case err := <-restarted:
			t.Fatalf("signet restarted (%v) before its /readyz was seen OK", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	readyAfter := time.Since(start)
	listed, ready, err := readySigners(ctx, signers, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if listed != total || ready != total {
		t.Errorf("at the first ready /readyz, signet listed %d signers in %s*, %d ready; want %d, all ready", listed, prefix, ready, total)
	}
	var notFound atomic.Int64
	parallel(t, total, 16, func(ctx context.Context, i int) error {
		ns, name := names(i)
		_, err := signers.CertManagerV1alpha1().Signers(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			notFound.Add(1)
			return nil
		}
		return err
	})
	if n := notFound.Load(); n > 0 {
		t.Errorf("%d of %d signers were 404 right after /readyz said ready", n, total)
	}
	t.Logf("/readyz OK %s after the restart with %d issuers", readyAfter.Round(time.Millisecond), total)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
}

// TestRestartServesEveryIssuerOnceReady restarts signet with 500 Issuers
// and an approved CSR waiting for each. From the moment signet's
// /readyz first answers OK every signer must be listed and served (no 404),
// and no CSR may get IssuerNotFound: readiness and the controller wait until
// the informer handlers have seen every issuer. SelfSigned issuers, whose
// state depends on nothing but the handlers, leave no other wait to hide
// behind; TestWatchesDoNotGrowWithIssuers checks CA issuers, whose Secrets
// must be read too, the same way.
func TestRestartServesEveryIssuerOnceReady(t *testing.T) {
	const prefix, perNS, csrEvery = "restart-", 100, 1
	namespaces := []string{prefix + "0", prefix + "1", prefix + "2", prefix + "3", prefix + "4"}
	selfSignedIssuers(t, namespaces, perNS)
	total := len(namespaces) * perNS
	waitSignersReady(t, prefix, total)

	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		putCASecret(t, ns, "csr-key", nil, testpki.KeyPEM(key))
	}
	request := pkcs10(t, &csrRequest{key: key, commonName: "restart"})
	var csrs []string
	t.Cleanup(func() {
		for _, name := range csrs {
			_ = env.kube.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	env.signet.Stop()
	// Approved while no signet runs: the controller finds them at start.
	for i := 0; i < total; i += csrEvery {
		csrs = append(csrs, fmt.Sprintf("restart-ready-%d", i))
	}
	parallel(t, len(csrs), 16, func(ctx context.Context, j int) error {
		i := j * csrEvery
		ns := namespaces[i%len(namespaces)]
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: csrs[j], Annotations: map[string]string{
				"experimental.cert-manager.io/private-key-secret-name": "csr-key"}},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    request,
				SignerName: fmt.Sprintf("issuers.cert-manager.io/%s.self-%d", ns, i),
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			},
		}
		if _, err := env.kube.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			return err
		}
		return trySetCondition(csrs[j], certificatesv1.CertificateApproved, t.Name())
	})

	restartAndCheckAtFirstReady(t, prefix, total, func(i int) (string, string) {
		return namespaces[i%len(namespaces)], fmt.Sprintf("self-%d", i)
	})
	eventually(t, "every CSR issued", func() (bool, error) {
		list, err := env.kube.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, csr := range list.Items {
			if strings.HasPrefix(csr.Name, "restart-ready-") && len(csr.Status.Certificate) > 0 {
				n++
			}
		}
		return n == len(csrs), nil
	})
	evs, err := env.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=CertificateSigningRequest,reason=IssuerNotFound",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if strings.HasPrefix(e.InvolvedObject.Name, "restart-ready-") {
			t.Errorf("CSR %s: %s %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

// watchRequests reads kube-apiserver's apiserver_longrunning_requests for
// verb WATCH: the total, and those on Secrets.
func watchRequests(ctx context.Context) (all, secrets int, err error) {
	body, err := env.kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%q: %w", line, err)
		}
		all += int(v)
		if strings.Contains(line, `resource="secrets"`) {
			secrets += int(v)
		}
	}
	return all, secrets, sc.Err()
}

// settledWatchRequests waits until watchRequests reads the same three times
// in a row (watches take a moment to open and close).
func settledWatchRequests(t *testing.T) (all, secrets int) {
	t.Helper()
	var last [2]int
	same := 0
	err := wait.PollUntilContextTimeout(context.Background(), 300*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		a, s, err := watchRequests(ctx)
		if err != nil {
			return false, err
		}
		if [2]int{a, s} == last {
			same++
		} else {
			last, same = [2]int{a, s}, 0
		}
		return same >= 2, nil
	})
	if err != nil {
		t.Fatalf("kube-apiserver's watch count never settled (last %v): %v", last, err)
	}
	return last[0], last[1]
}

// TestWatchesDoNotGrowWithIssuers creates 2,000 CA Issuers, each with its
// own Secret, across 20 namespaces, and reads kube-apiserver's count of open
// watches: signet's Secret watches stay at one, and all its watches at a
// small constant (one per resource it reads), however many Issuers exist.
func TestWatchesDoNotGrowWithIssuers(t *testing.T) {
	const prefix, perNS = "watches-", 100
	var namespaces []string
	for i := range 20 {
		namespaces = append(namespaces, fmt.Sprintf("%s%d", prefix, i))
	}
	beforeAll, beforeSecrets := settledWatchRequests(t)
	start := time.Now()
	caIssuers(t, namespaces, perNS)
	total := len(namespaces) * perNS
	waitSignersReady(t, prefix, total)
	t.Logf("%d Issuers and Secrets created and all signers Ready in %s", total, time.Since(start).Round(time.Millisecond))
	withAll, withSecrets := settledWatchRequests(t)
	if withSecrets > beforeSecrets || withAll > beforeAll+1 {
		t.Errorf("with %d more Issuers and Secrets kube-apiserver holds %d watches (%d on Secrets), was %d (%d)",
			total, withAll, withSecrets, beforeAll, beforeSecrets)
	}

	// What signet itself holds: the difference it makes to be running.
	// Restarted, it is ready only once every CA Secret has been read.
	env.signet.Stop()
	offAll, offSecrets := settledWatchRequests(t)
	restartAndCheckAtFirstReady(t, prefix, total, func(i int) (string, string) {
		return namespaces[i%len(namespaces)], fmt.Sprintf("ca-%d", i)
	})
	onAll, onSecrets := settledWatchRequests(t)
	signetAll, signetSecrets := onAll-offAll, onSecrets-offSecrets
	t.Logf("signet holds %d watches on kube-apiserver, %d of them on Secrets, with %d Issuers and Secrets", signetAll, signetSecrets, total)
	// Issuers, ClusterIssuers, Secrets, CSRs and the authentication
	// ConfigMap, with room for what a new version may add; never one per Issuer.
	const maxSignetWatches = 10
	if signetSecrets != 1 || signetAll > maxSignetWatches {
		t.Errorf("signet holds %d watches (%d on Secrets), want at most %d and exactly 1 on Secrets", signetAll, signetSecrets, maxSignetWatches)
	}
	waitSignersReady(t, prefix, total)
}
