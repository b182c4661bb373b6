// Package e2e runs the kubectl-signet plugin, as a user would, against a real
// kube-apiserver, etcd and signet: certificates requested through CSRs and
// the sign subresource, verified with openssl; status and describe output.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
)

var env struct {
	cp     *framework.ControlPlane
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	signer versioned.Interface
	// pluginDir holds the kubectl-signet binary built for this run.
	pluginDir string
	plugin    string
}

var (
	issuerGVR        = issuers.IssuerGVR
	clusterIssuerGVR = issuers.ClusterIssuerGVR
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := framework.Binary("kube-apiserver"); err != nil && os.Getenv("CI") == "" {
		fmt.Fprintf(os.Stderr, "skipping e2e tests: %v\n", err)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "kubectl-signet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildPlugin(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// --write-ca-annotation, so that `create csr --wait` can write ca.crt.
	cp, _, err := framework.StartEnvironment(ctx, framework.ControlPlaneOptions{DisableAnonymousAuth: true},
		framework.SignetOptions{ExtraArgs: []string{"--write-ca-annotation"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cp.Stop()
	env.cp = cp
	env.kube = kubernetes.NewForConfigOrDie(cp.AdminConfig)
	env.dyn = dynamic.NewForConfigOrDie(cp.AdminConfig)
	env.signer = versioned.NewForConfigOrDie(cp.AdminConfig)
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, cp.LogTails(40))
	}
	return code
}

// buildPlugin builds ./cmd/kubectl-signet into dir once for every test.
func buildPlugin(ctx context.Context, dir string) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	env.pluginDir = dir
	env.plugin = filepath.Join(dir, "kubectl-signet")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", env.plugin, "./cmd/kubectl-signet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building ./cmd/kubectl-signet: %w\n%s", err, out)
	}
	return nil
}

// pluginRun is one kubectl-signet (or kubectl) process.
type pluginRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	cancel         context.CancelFunc
}

// startPlugin starts kubectl-signet with args as kubeconfig's user (the
// admin's if empty), in the background.
func startPlugin(t *testing.T, kubeconfig string, args ...string) *pluginRun {
	t.Helper()
	return startCommand(t, kubeconfig, env.plugin, args...)
}

// startCommand runs bin with KUBECONFIG set and the plugin directory first
// on PATH, as a user who installed the plugin would.
func startCommand(t *testing.T, kubeconfig, bin string, args ...string) *pluginRun {
	t.Helper()
	if kubeconfig == "" {
		kubeconfig = env.cp.KubeconfigPath
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	r := &pluginRun{cancel: cancel}
	r.cmd = exec.CommandContext(ctx, bin, args...)
	r.cmd.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"PATH="+env.pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+t.TempDir())
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = r.cmd.Wait()
	})
	return r
}

// wait waits for the process and returns its output and exit error.
func (r *pluginRun) wait() (stdout, stderr string, err error) {
	err = r.cmd.Wait()
	r.cancel()
	return r.stdout.String(), r.stderr.String(), err
}

// runPlugin runs kubectl-signet to the end and fails t if it fails.
func runPlugin(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := startPlugin(t, "", args...).wait()
	if err != nil {
		t.Fatalf("kubectl-signet %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// newCAIssuer creates a CA, its Secret and an Issuer (ns != "") or
// ClusterIssuer (Secret in cert-manager) for it, and waits for its signer
// to be Ready.
func newCAIssuer(t *testing.T, ns, name string, keyType testpki.KeyType) *testpki.CA {
	t.Helper()
	ctx := context.Background()
	ca, err := testpki.NewCA(testpki.CAOptions{CommonName: name + " CA", KeyType: keyType})
	if err != nil {
		t.Fatal(err)
	}
	secretNS := ns
	if ns == "" {
		secretNS = "cert-manager"
	}
	createNamespace(t, secretNS)
	_, err = env.kube.CoreV1().Secrets(secretNS).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: secretNS},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: ca.CertPEM(), corev1.TLSPrivateKeyKey: ca.KeyPEM()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createIssuer(t, ns, name, name)
	eventually(t, "signer "+name+" to be Ready", func() (bool, error) {
		var conds []metav1.Condition
		if ns == "" {
			s, err := env.signer.CertManagerV1alpha1().ClusterSigners().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds = s.Status.Conditions
		} else {
			s, err := env.signer.CertManagerV1alpha1().Signers(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds = s.Status.Conditions
		}
		for _, c := range conds {
			if c.Type == "Ready" {
				return c.Status == metav1.ConditionTrue, fmt.Errorf("%s: %s", c.Reason, c.Message)
			}
		}
		return false, nil
	})
	return ca
}

// createIssuer creates a CA Issuer (ns != "") or ClusterIssuer whose CA is in Secret secret.
func createIssuer(t *testing.T, ns, name, secret string) {
	t.Helper()
	kind, res := "Issuer", env.dyn.Resource(issuerGVR).Namespace(ns)
	if ns == "" {
		kind, res = "ClusterIssuer", env.dyn.Resource(clusterIssuerGVR)
	}
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "cert-manager.io/v1", "kind": kind,
		"metadata": map[string]interface{}{"name": name, "namespace": ns},
		"spec":     map[string]interface{}{"ca": map[string]interface{}{"secretName": secret}},
	}}
	if ns == "" {
		unstructured.RemoveNestedField(u.Object, "metadata", "namespace")
	}
	if _, err := res.Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 60 s.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true,
		func(context.Context) (bool, error) {
			ok, err := cond()
			last = err
			return ok, nil
		})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last: %v)", what, last)
	}
}
