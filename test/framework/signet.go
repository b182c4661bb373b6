package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
)

// Where kube-apiserver finds signet: the APIService points at this Service,
// an ExternalName for localhost, and proxies with TLS ServerName
// signet.signet-system.svc.
const (
	SignetNamespace      = "signet-system"
	SignetServiceName    = "signet"
	SignetGroup          = "cert-manager.io"
	SignetVersion        = "v1alpha1"
	SignetAPIServiceName = SignetVersion + "." + SignetGroup

	signetBinaryName = "signet-apiserver"
)

// SignetOptions configures StartSignet.
type SignetOptions struct {
	// ExtraArgs are appended to signet's flags.
	ExtraArgs []string
	// ReadyTimeout bounds the wait for the APIService to become Available;
	// default 60s.
	ReadyTimeout time.Duration
	// Kubeconfig is the identity signet uses towards kube-apiserver, for its
	// own client and for delegated authentication and authorization; default
	// the admin's (ControlPlane.KubeconfigPath).
	Kubeconfig string
	// SelfManagedServing runs signet without --tls-cert-file: it generates
	// its serving CA and certificate and keeps the APIService's caBundle
	// current itself. The APIService is registered without a caBundle, and
	// an existing one is left as it is.
	SelfManagedServing bool
	// Unregistered leaves the Service and APIService as they are, for a
	// second replica while another one is behind the APIService; ready then
	// means /readyz.
	Unregistered bool
	// Name names the process in errors and its log, <Name>.log in the
	// control plane's directory; default "signet".
	Name string
	// Binary is the signet-apiserver to run; default the one
	// SIGNET_BIN_DIR or a fresh build gives.
	Binary string
}

// Signet is a running signet-apiserver registered with a ControlPlane's
// aggregator.
type Signet struct {
	// URL is signet's own https://127.0.0.1:<port>, bypassing kube-apiserver.
	URL string
	// MetricsURL is the plain-HTTP metrics endpoint,
	// http://127.0.0.1:<port>/metrics.
	MetricsURL string
	// LogPath is signet's log; restarts append to it.
	LogPath string
	// CAPEM is the CA of signet's serving certificate (the APIService's
	// caBundle). With SelfManagedServing it is the APIService's caBundle as
	// it was when signet became ready.
	CAPEM []byte
	// Port and MetricsPort are the ports in URL and MetricsURL.
	Port, MetricsPort int
	// Args are the flags signet runs with.
	Args []string

	cp           *ControlPlane
	binary       string
	name         string // log and error prefix
	group        string
	version      string
	readyTimeout time.Duration
	selfManaged  bool
	unregistered bool

	mu   sync.Mutex
	proc *process
}

// StartSignet registers signet with cp's aggregator (namespace signet-system,
// ExternalName Service signet, APIService v1alpha1.cert-manager.io), starts it
// and returns once it is ready and the APIService is Available. ctx bounds
// the start only. cp.Stop stops it too.
func StartSignet(ctx context.Context, cp *ControlPlane, opts SignetOptions) (*Signet, error) {
	bin, err := opts.Binary, error(nil)
	if bin == "" {
		if bin, err = signetBinary(); err != nil {
			return nil, err
		}
	}
	name := opts.Name
	if name == "" {
		name = "signet"
	}
	s := &Signet{
		cp:           cp,
		binary:       bin,
		name:         name,
		group:        SignetGroup,
		version:      SignetVersion,
		readyTimeout: opts.ReadyTimeout,
		selfManaged:  opts.SelfManagedServing,
		unregistered: opts.Unregistered,
		LogPath:      filepath.Join(cp.Dir, name+".log"),
	}
	kubeconfig := opts.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = cp.KubeconfigPath
	}
	err = s.start(ctx, func(port, metricsPort int) []string {
		args := []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
			"--cluster-resource-namespace=cert-manager",
			"--service-name=" + SignetServiceName,
			"--service-namespace=" + SignetNamespace,
		}
		if !opts.SelfManagedServing {
			args = append(args, "--tls-cert-file="+cp.Files.SignetServingCert, "--tls-private-key-file="+cp.Files.SignetServingKey)
		}
		return append(args, opts.ExtraArgs...)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// StartSignetT starts signet for t and stops it when t ends, printing the
// tail of its log if t failed.
func StartSignetT(t testing.TB, cp *ControlPlane, opts SignetOptions) *Signet {
	t.Helper()
	start := time.Now()
	s, err := StartSignet(t.Context(), cp, opts)
	if err != nil {
		t.Fatalf("starting signet: %v", err)
	}
	t.Logf("signet up in %s at %s", time.Since(start).Round(time.Millisecond), s.URL)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last %d lines of %s:\n%s", logTailLines, s.LogPath, tailFile(s.LogPath, logTailLines))
		}
		s.Stop()
	})
	return s
}

// start picks ports, registers the APIService, starts the process and waits
// until it is ready, retrying with new ports if one was taken meanwhile.
func (s *Signet) start(ctx context.Context, argsFor func(port, metricsPort int) []string) error {
	if s.readyTimeout == 0 {
		s.readyTimeout = 60 * time.Second
	}
	if !s.selfManaged {
		s.CAPEM = s.cp.PKI.SignetCA.CertPEM
	}
	if err := s.cp.addSignet(s); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		s.Port, s.MetricsPort = ports[0], ports[1]
		s.URL = "https://127.0.0.1:" + strconv.Itoa(s.Port)
		s.MetricsURL = "http://127.0.0.1:" + strconv.Itoa(s.MetricsPort) + "/metrics"
		s.Args = argsFor(s.Port, s.MetricsPort)
		if !s.unregistered {
			if err := s.register(ctx); err != nil {
				return fmt.Errorf("registering %s with the aggregator: %w", s.name, err)
			}
		}
		err = s.run(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == 3 {
			return err
		}
	}
}

// register creates or updates the namespace, Service and APIService that
// route s.group/s.version to s.Port.
func (s *Signet) register(ctx context.Context) error {
	kube, err := kubernetes.NewForConfig(s.cp.AdminConfig)
	if err != nil {
		return err
	}
	agg, err := aggregator.NewForConfig(s.cp.AdminConfig)
	if err != nil {
		return err
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SignetNamespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); ignoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating namespace %s: %w", SignetNamespace, err)
	}

	port := int32(s.Port)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: SignetNamespace, Name: SignetServiceName},
		Spec: corev1.ServiceSpec{
			// The default service resolver turns an ExternalName into
			// https://<externalName>:<port>; endpoints can't be loopback.
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports: []corev1.ServicePort{{
				Name:       "https",
				Protocol:   corev1.ProtocolTCP,
				Port:       port,
				TargetPort: intstr.FromInt32(port),
			}},
		},
	}
	services := kube.CoreV1().Services(SignetNamespace)
	// Controllers write these objects' status concurrently: retry conflicts.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := services.Get(ctx, SignetServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = services.Create(ctx, svc, metav1.CreateOptions{})
			return err
		} else if err != nil {
			return err
		}
		cur.Spec = svc.Spec
		_, err = services.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("registering service %s/%s: %w", SignetNamespace, SignetServiceName, err)
	}

	apiSvc := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: s.apiServiceName()},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:   s.group,
			Version: s.version,
			Service: &apiregistrationv1.ServiceReference{
				Namespace: SignetNamespace,
				Name:      SignetServiceName,
				Port:      &port,
			},
			CABundle:             s.CAPEM, // nil with SelfManagedServing
			GroupPriorityMinimum: 1000,
			// Low, so that a CRD-served cert-manager.io/v1 stays the
			// group's preferred version.
			VersionPriority: 5,
		},
	}
	apiServices := agg.ApiregistrationV1().APIServices()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := apiServices.Get(ctx, apiSvc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = apiServices.Create(ctx, apiSvc, metav1.CreateOptions{})
			return err
		} else if err != nil {
			return err
		}
		bundle := cur.Spec.CABundle
		cur.Spec = apiSvc.Spec
		if s.selfManaged {
			cur.Spec.CABundle = bundle // signet's own, kept current by it
		}
		_, err = apiServices.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("registering APIService %s: %w", apiSvc.Name, err)
	}
	return nil
}

func (s *Signet) apiServiceName() string { return s.version + "." + s.group }

// run starts the process with s.Args and waits until it is ready.
func (s *Signet) run(ctx context.Context) error {
	p, err := startProcess(s.name, s.binary, s.Args, s.LogPath)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	if err := s.waitReady(ctx, p); err != nil {
		p.stop(stopGrace)
		return err
	}
	return nil
}

// waitReady waits until p serves /readyz, the APIService is Available and a
// discovery request proxied through kube-apiserver succeeds; for an
// unregistered replica, until it serves /readyz. With SelfManagedServing,
// /readyz is asked with the APIService's caBundle as the only trusted CA, so
// ready also means signet has published its CA there.
func (s *Signet) waitReady(ctx context.Context, p *process) error {
	agg, err := aggregator.NewForConfig(s.cp.AdminConfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(s.cp.AdminConfig)
	if err != nil {
		return err
	}
	lastErr := errors.New("no answer yet")
	condition := "no Available condition yet"
	err = poll(ctx, s.readyTimeout, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, errExited
		}
		apiSvc, err := agg.ApiregistrationV1().APIServices().Get(ctx, s.apiServiceName(), metav1.GetOptions{})
		if err != nil {
			remember(ctx, &lastErr, err)
			return false, nil
		}
		if s.selfManaged {
			s.CAPEM = apiSvc.Spec.CABundle
		}
		direct, err := kubernetes.NewForConfig(s.ClientConfig())
		if err != nil {
			return false, err
		}
		if _, err := direct.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(ctx); err != nil {
			remember(ctx, &lastErr, fmt.Errorf("%s /readyz: %w", s.URL, err))
			return false, nil
		}
		if s.unregistered {
			return true, nil
		}
		available := false
		for _, c := range apiSvc.Status.Conditions {
			if c.Type == apiregistrationv1.Available {
				condition = fmt.Sprintf("Available=%s %s: %s", c.Status, c.Reason, c.Message)
				available = c.Status == apiregistrationv1.ConditionTrue
			}
		}
		if !available {
			remember(ctx, &lastErr, errors.New("APIService not Available"))
			return false, nil
		}
		if _, err := kube.Discovery().RESTClient().Get().AbsPath("/apis", s.group, s.version).DoRaw(ctx); err != nil {
			remember(ctx, &lastErr, fmt.Errorf("discovery through kube-apiserver: %w", err))
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		if errors.Is(err, errExited) {
			return p.exitError()
		}
		return fmt.Errorf("waiting for %s at %s: %w (last: %v; APIService %s: %s); last lines of %s:\n%s",
			s.name, s.URL, err, lastErr, s.apiServiceName(), condition, s.LogPath, tailFile(s.LogPath, logTailLines))
	}
	return nil
}

// ClientConfig returns a config that talks to signet directly as the admin,
// bypassing kube-apiserver and the aggregator (signet trusts kube-apiserver's
// client CA for client certificates).
func (s *Signet) ClientConfig() *rest.Config {
	cfg := rest.CopyConfig(s.cp.AdminConfig)
	cfg.Host = s.URL
	cfg.CAData = s.CAPEM
	return cfg
}

// Stop sends SIGTERM to signet (SIGKILL after a grace period) and waits for it
// to exit. The APIService stays, and reports the service unavailable.
func (s *Signet) Stop() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	p.stop(stopGrace)
}

// Kill SIGKILLs signet, as a crash would, and waits for it to exit.
func (s *Signet) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	p.kill()
}

// Restart stops signet if it is still running, starts a new process with the
// same flags and ports, and waits as StartSignet does.
func (s *Signet) Restart(ctx context.Context) error {
	s.Stop()
	return s.run(ctx)
}

// Pid is the process id of the current signet process.
func (s *Signet) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.Pid()
}

var buildSignet = sync.OnceValues(func() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(root, "_output", "bin", signetBinaryName)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	// Other test binaries may be building or running it at the same time:
	// build beside it and rename, which replaces it atomically.
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/"+signetBinaryName)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building ./cmd/%s: %w\n%s", signetBinaryName, err, output)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
})

// signetBinary is $SIGNET_BIN_DIR/signet-apiserver if SIGNET_BIN_DIR is set,
// else a fresh `go build` of ./cmd/signet-apiserver, once per process.
func signetBinary() (string, error) {
	if os.Getenv("SIGNET_BIN_DIR") != "" {
		return Binary(signetBinaryName)
	}
	return buildSignet()
}
