// Package framework starts etcd, kube-apiserver and signet as real processes
// on loopback, for integration tests and for `make run`.
package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const modulePath = "github.com/signet-dev/signet"

// ControlPlaneOptions configures StartControlPlane. The zero value is a
// control plane in a fresh temporary directory with anonymous auth enabled.
type ControlPlaneOptions struct {
	// Dir holds the PKI, etcd's data, the logs and the admin kubeconfig. It is
	// created if needed and kept by Stop. Empty means a new temporary
	// directory that Stop removes.
	Dir string
	// DisableAnonymousAuth starts kube-apiserver with --anonymous-auth=false,
	// so that unauthenticated requests get 401 instead of being
	// system:anonymous.
	DisableAnonymousAuth bool
	// NodeAuthorization authorizes with Node,RBAC and admits with the
	// NodeRestriction plugin, as a real cluster does, so that a test can act
	// as a kubelet (RegisterNode) and be held to what a kubelet may do.
	NodeAuthorization bool
	// ExtraArgs are appended to kube-apiserver's flags; a repeated flag
	// overrides the harness's.
	ExtraArgs []string
	// EtcdExtraArgs are appended to etcd's flags.
	EtcdExtraArgs []string
	// StartTimeout bounds each process's wait for readiness; default 2m.
	StartTimeout time.Duration
}

// ControlPlane is a running etcd and kube-apiserver on 127.0.0.1.
type ControlPlane struct {
	// Dir holds everything the control plane writes.
	Dir string
	// URL is kube-apiserver's https://127.0.0.1:<port>.
	URL string
	// KubeconfigPath is an admin kubeconfig with embedded credentials.
	KubeconfigPath string
	// AdminConfig authenticates as a member of system:masters.
	AdminConfig *rest.Config
	// EtcdURL is etcd's client URL, http://127.0.0.1:<port>.
	EtcdURL string
	// PKI is every certificate and key in use; Files is where they are.
	PKI   *PKI
	Files PKIFiles
	// EtcdLogPath and APIServerLogPath are the processes' logs.
	EtcdLogPath      string
	APIServerLogPath string

	opts      ControlPlaneOptions
	removeDir bool
	etcd      *process
	apiserver *process
	// The ports the processes listen on, so tests can check they were released.
	etcdClientPort, etcdPeerPort, apiserverPort int

	mu      sync.Mutex
	signets []*Signet
	stopped bool
}

// StartControlPlane starts etcd and kube-apiserver and returns once
// kube-apiserver's /readyz passes. ctx bounds the start only: the processes
// run until Stop. On error nothing is left running.
func StartControlPlane(ctx context.Context, opts ControlPlaneOptions) (_ *ControlPlane, retErr error) {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	etcdBin, err := Binary("etcd")
	if err != nil {
		return nil, err
	}
	apiserverBin, err := Binary("kube-apiserver")
	if err != nil {
		return nil, err
	}

	cp := &ControlPlane{opts: opts, Dir: opts.Dir}
	if cp.Dir == "" {
		if cp.Dir, err = os.MkdirTemp("", "signet-controlplane-"); err != nil {
			return nil, err
		}
		cp.removeDir = true
	} else if cp.Dir, err = filepath.Abs(cp.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cp.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			cp.Stop()
		}
	}()

	if cp.PKI, err = NewPKI(); err != nil {
		return nil, err
	}
	if cp.Files, err = WritePKI(cp.PKI, filepath.Join(cp.Dir, "pki")); err != nil {
		return nil, fmt.Errorf("writing PKI: %w", err)
	}
	cp.EtcdLogPath = filepath.Join(cp.Dir, "etcd.log")
	cp.APIServerLogPath = filepath.Join(cp.Dir, "kube-apiserver.log")

	// Ports are picked by binding and releasing them, so another process may
	// win one before our child binds it: retry with new ports when that happens.
	for attempt := 1; ; attempt++ {
		err = cp.startEtcd(ctx, etcdBin)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == 3 {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		err = cp.startAPIServer(ctx, apiserverBin)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == 3 {
			return nil, err
		}
	}

	cp.KubeconfigPath = filepath.Join(cp.Dir, "kubeconfig")
	if err := writeKubeconfig(cp.KubeconfigPath, cp.AdminConfig, "admin"); err != nil {
		return nil, fmt.Errorf("writing admin kubeconfig: %w", err)
	}
	return cp, nil
}

func (cp *ControlPlane) startEtcd(ctx context.Context, bin string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	dataDir := filepath.Join(cp.Dir, "etcd-data")
	// A failed attempt may have left a half-initialised member behind.
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	args := []string{
		"--name=signet-test",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=signet-test=" + peerURL,
		"--initial-cluster-state=new",
		// Test data is disposable: trade durability for speed.
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=" + strconv.Itoa(4<<30),
		"--log-level=warn",
	}
	args = append(args, cp.opts.EtcdExtraArgs...)
	p, err := startProcess("etcd", bin, args, cp.EtcdLogPath)
	if err != nil {
		return err
	}
	cp.etcd, cp.EtcdURL = p, clientURL
	cp.etcdClientPort, cp.etcdPeerPort = ports[0], ports[1]

	client := &http.Client{Timeout: 2 * time.Second}
	lastErr := errors.New("no answer yet")
	err = poll(ctx, cp.opts.StartTimeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, errExited
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		resp, err := client.Do(req)
		if err != nil {
			remember(ctx, &lastErr, err)
			return false, nil
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
			return true, nil
		}
		remember(ctx, &lastErr, fmt.Errorf("/health: %d %s", resp.StatusCode, body))
		return false, nil
	})
	if err != nil {
		p.stop(stopGrace)
		if errors.Is(err, errExited) {
			return p.exitError()
		}
		return fmt.Errorf("waiting for etcd at %s: %w (last: %v); last lines of %s:\n%s",
			clientURL, err, lastErr, cp.EtcdLogPath, tailFile(cp.EtcdLogPath, logTailLines))
	}
	return nil
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, bin string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	port := ports[0]
	f := cp.Files
	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		// Endpoints may not hold loopback addresses.
		"--endpoint-reconciler-type=none",
		"--etcd-servers=" + cp.EtcdURL,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--anonymous-auth=" + strconv.FormatBool(!cp.opts.DisableAnonymousAuth),
		"--client-ca-file=" + f.ClientCA,
		"--tls-cert-file=" + f.APIServerCert,
		"--tls-private-key-file=" + f.APIServerKey,
		// Only used if it had to generate certificates; keep it out of /var/run.
		"--cert-dir=" + filepath.Join(cp.Dir, "kube-apiserver-certs"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f.ServiceAccountPublic,
		"--service-account-signing-key-file=" + f.ServiceAccountKey,
		"--requestheader-client-ca-file=" + f.FrontProxyCA,
		"--requestheader-allowed-names=" + FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + f.FrontProxyClientCert,
		"--proxy-client-key-file=" + f.FrontProxyClientKey,
	}
	if cp.opts.NodeAuthorization {
		// Not appended to: list flags accumulate rather than override.
		args[slices.Index(args, "--authorization-mode=RBAC")] = "--authorization-mode=Node,RBAC"
		args = append(args, "--enable-admission-plugins=NodeRestriction")
	}
	args = append(args, cp.opts.ExtraArgs...)
	p, err := startProcess("kube-apiserver", bin, args, cp.APIServerLogPath)
	if err != nil {
		return err
	}
	cp.apiserver = p
	cp.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	cp.apiserverPort = port
	cp.AdminConfig = cp.configFor(cp.PKI.Admin)

	client, err := kubernetes.NewForConfig(cp.AdminConfig)
	if err != nil {
		p.stop(stopGrace)
		return err
	}
	lastErr := errors.New("no answer yet")
	err = poll(ctx, cp.opts.StartTimeout, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, errExited
		}
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(ctx); err != nil {
			remember(ctx, &lastErr, fmt.Errorf("/readyz: %w", err))
			return false, nil
		}
		// Aggregated servers read their front-proxy and client CAs from this
		// ConfigMap, written by a post-start hook that /readyz does not cover.
		if _, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{}); err != nil {
			remember(ctx, &lastErr, err)
			return false, nil
		}
		if _, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
			remember(ctx, &lastErr, err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		p.stop(stopGrace)
		if errors.Is(err, errExited) {
			return p.exitError()
		}
		return fmt.Errorf("waiting for kube-apiserver at %s: %w (last: %v); last lines of %s:\n%s",
			cp.URL, err, lastErr, cp.APIServerLogPath, tailFile(cp.APIServerLogPath, logTailLines))
	}
	return nil
}

// configFor returns a config that talks to kube-apiserver with kp as the
// client certificate.
func (cp *ControlPlane) configFor(kp *KeyPair) *rest.Config {
	return &rest.Config{
		Host: cp.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cp.PKI.ServingCA.CertPEM,
			CertData: kp.CertPEM,
			KeyData:  kp.KeyPEM,
		},
		// Client-side throttling at the defaults (5 QPS) only slows tests down.
		QPS:   100,
		Burst: 200,
	}
}

// UserConfig returns a config that authenticates to kube-apiserver as user in
// groups, through a client certificate signed by the client CA. It has no
// permissions beyond what RBAC grants that user and those groups.
func (cp *ControlPlane) UserConfig(user string, groups ...string) *rest.Config {
	kp, err := cp.PKI.ClientCA.NewClientCert(user, groups...)
	if err != nil {
		// Only a failing system random source gets here.
		panic(err)
	}
	return cp.configFor(kp)
}

// Stop stops every signet started on this control plane, then kube-apiserver,
// then etcd (SIGTERM to each process group, SIGKILL after a grace period), and
// returns once all have exited. It removes Dir if StartControlPlane created
// it. Safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.mu.Lock()
	signets := cp.signets
	cp.signets = nil
	cp.stopped = true
	cp.mu.Unlock()
	for _, s := range signets {
		s.Stop()
	}
	cp.apiserver.stop(stopGrace)
	cp.etcd.stop(stopGrace)
	if cp.removeDir {
		os.RemoveAll(cp.Dir)
	}
}

// addSignet records s so that Stop stops it.
func (cp *ControlPlane) addSignet(s *Signet) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return errors.New("control plane is stopped")
	}
	cp.signets = append(cp.signets, s)
	return nil
}

// APIServerPid and EtcdPid are the processes' ids, for measuring what
// they cost (benchmarks read /proc/<pid>).
func (cp *ControlPlane) APIServerPid() int { return cp.apiserver.Pid() }
func (cp *ControlPlane) EtcdPid() int      { return cp.etcd.Pid() }

// LogTails returns the last n lines of each process's log, for a failing
// test's output.
func (cp *ControlPlane) LogTails(n int) string {
	var b strings.Builder
	paths := []string{cp.EtcdLogPath, cp.APIServerLogPath}
	cp.mu.Lock()
	for _, s := range cp.signets {
		paths = append(paths, s.LogPath)
	}
	cp.mu.Unlock()
	for _, p := range paths {
		if p == "" {
			continue
		}
		fmt.Fprintf(&b, "--- last %d lines of %s\n%s\n", n, p, tailFile(p, n))
	}
	return b.String()
}

// StartControlPlaneT starts a control plane for t and stops it when t ends,
// printing the tail of every log if t failed. Without the binaries it skips t,
// unless $CI is set, where a missing binary fails t.
func StartControlPlaneT(t testing.TB, opts ControlPlaneOptions) *ControlPlane {
	t.Helper()
	RequireBinaries(t, "etcd", "kube-apiserver", "kubectl")
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	start := time.Now()
	cp, err := StartControlPlane(t.Context(), opts)
	if err != nil {
		t.Fatalf("starting control plane: %v", err)
	}
	t.Logf("control plane up in %s at %s (dir %s)", time.Since(start).Round(time.Millisecond), cp.URL, cp.Dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs:\n%s", cp.LogTails(logTailLines))
		}
		cp.Stop()
	})
	return cp
}

// RequireBinaries skips t if one of the named binaries is missing, or fails
// it when $CI is set: CI must never silently skip integration tests.
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := Binary(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%v", err)
			}
			t.Skipf("skipping: %v", err)
		}
	}
}

// Binary returns the path of a built tool (etcd, kube-apiserver, kubectl,
// signet-apiserver) in BinDir, or an error saying how to build it.
func Binary(name string) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		how := "run `make tools`"
		if name == signetBinaryName {
			how = "run `make build`"
		}
		return "", fmt.Errorf("%s not found at %s: %s (or set SIGNET_BIN_DIR to a directory holding it)", name, path, how)
	}
	return path, nil
}

// BinDir is $SIGNET_BIN_DIR if set, else <repo root>/_output/bin.
func BinDir() (string, error) {
	if dir := os.Getenv("SIGNET_BIN_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "_output", "bin"), nil
}

var repoRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isSignetModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s in the working directory or above; run from the signet repository or set SIGNET_BIN_DIR", modulePath)
		}
		dir = parent
	}
})

// RepoRoot is the nearest directory at or above the working directory whose
// go.mod declares module github.com/signet-dev/signet.
func RepoRoot() (string, error) { return repoRoot() }

func isSignetModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// writeKubeconfig writes a self-contained kubeconfig for cfg's server and
// client certificate.
func writeKubeconfig(path string, cfg *rest.Config, user string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["signet"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts["signet"] = &clientcmdapi.Context{Cluster: "signet", AuthInfo: user}
	kc.CurrentContext = "signet"
	return clientcmd.WriteToFile(*kc, path)
}

// poll calls cond every interval until it returns true or an error, or
// timeout or ctx ends.
func poll(ctx context.Context, timeout, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timed out after %s", timeout))
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// remember records err as the latest reason a wait goes on, unless ctx has
// ended: a request cut short by the deadline says nothing about the server.
func remember(ctx context.Context, last *error, err error) {
	if ctx.Err() == nil {
		*last = err
	}
}

// ignoreAlreadyExists turns AlreadyExists into success, for idempotent setup.
func ignoreAlreadyExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
