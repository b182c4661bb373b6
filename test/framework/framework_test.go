package framework

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestControlPlane(t *testing.T) {
	cp := StartControlPlaneT(t, ControlPlaneOptions{})
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.AdminConfig)

	t.Run("admin lists namespaces with client-go", func(t *testing.T) {
		list, err := admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ns := range list.Items {
			names = append(names, ns.Name)
		}
		for _, want := range []string{"default", "kube-system"} {
			if !slices.Contains(names, want) {
				t.Errorf("namespaces %v lack %q", names, want)
			}
		}
	})

	t.Run("kubectl version reports the v1.37.2 server", func(t *testing.T) {
		out, _, err := cp.Kubectl(ctx, "version")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Server Version: v1.37.2") {
			t.Errorf("kubectl version:\n%s", out)
		}
	})

	t.Run("kubectl get ns as admin", func(t *testing.T) {
		out, _, err := cp.Kubectl(ctx, "get", "ns", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "namespace/kube-system") {
			t.Errorf("kubectl get ns:\n%s", out)
		}
	})

	t.Run("a user without RBAC grants is forbidden", func(t *testing.T) {
		alice := kubernetes.NewForConfigOrDie(cp.UserConfig("alice", "testers"))
		_, err := alice.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("alice listing namespaces: want 403 Forbidden, got %v", err)
		}
		if !strings.Contains(err.Error(), `User "alice"`) {
			t.Errorf("403 does not name alice: %v", err)
		}

		kubeconfig, err := cp.WriteUserKubeconfig("alice")
		if err != nil {
			t.Fatal(err)
		}
		_, stderr, err := cp.KubectlAs(ctx, kubeconfig, "get", "ns")
		if err == nil || !strings.Contains(stderr, "forbidden") {
			t.Errorf("kubectl get ns as alice: want forbidden, got err=%v stderr=%s", err, stderr)
		}
	})

	pids := []int{cp.etcd.Pid(), cp.apiserver.Pid()}
	ports := []int{cp.etcdClientPort, cp.etcdPeerPort, cp.apiserverPort}
	cp.Stop()
	assertNothingRunning(t, cp.Dir, pids, ports)
}

func TestDisableAnonymousAuthRejectsUnauthenticatedRequests(t *testing.T) {
	cp := StartControlPlaneT(t, ControlPlaneOptions{DisableAnonymousAuth: true})
	anonymous := kubernetes.NewForConfigOrDie(rest.AnonymousClientConfig(cp.AdminConfig))
	_, err := anonymous.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("anonymous list: want 401 Unauthorized, got %v", err)
	}
}

func TestStartControlPlaneNamesMakeToolsWhenBinaryIsMissing(t *testing.T) {
	t.Setenv("SIGNET_BIN_DIR", t.TempDir())
	_, err := StartControlPlane(t.Context(), ControlPlaneOptions{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("want an error naming `make tools`, got %v", err)
	}
}

func TestStartControlPlaneFailureCarriesLogTailAndLeavesNothingRunning(t *testing.T) {
	RequireBinaries(t, "etcd", "kube-apiserver")
	dir := t.TempDir()
	_, err := StartControlPlane(t.Context(), ControlPlaneOptions{
		Dir:       dir,
		ExtraArgs: []string{"--no-such-flag"},
	})
	if err == nil {
		t.Fatal("kube-apiserver started with an unknown flag")
	}
	if !strings.Contains(err.Error(), "unknown flag: --no-such-flag") {
		t.Errorf("error lacks the log line saying why:\n%v", err)
	}
	assertNothingRunning(t, dir, nil, nil)
}

func TestSignet(t *testing.T) {
	requireSignet(t)
	cp := StartControlPlaneT(t, ControlPlaneOptions{})
	ctx := t.Context()
	crdDir, err := IssuerCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	// signet is ready only once its Issuer informers sync, which needs the CRDs.
	if _, err := cp.InstallCRDs(ctx, crdDir); err != nil {
		t.Fatal(err)
	}
	s := StartSignetT(t, cp, SignetOptions{})

	out, _, err := cp.Kubectl(ctx, "api-resources", "--api-group="+SignetGroup, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "signers."+SignetGroup) {
		t.Errorf("kubectl api-resources lacks signers:\n%s", out)
	}

	// Through the aggregator as an ordinary user: the front-proxy headers
	// carry alice to signet, which asks kube-apiserver and gets a no.
	alice, err := cp.WriteUserKubeconfig("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := cp.KubectlAs(ctx, alice, "get", "signers", "-A"); err == nil || !strings.Contains(stderr, `User "alice"`) {
		t.Errorf("kubectl get signers as alice: want forbidden naming alice, got err=%v stderr=%s", err, stderr)
	}

	resp, err := http.Get(s.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", s.MetricsURL, resp.Status)
	}

	killAndRestart(t, s)
	pids := []int{s.Pid(), cp.etcd.Pid(), cp.apiserver.Pid()}
	ports := []int{s.Port, s.MetricsPort, cp.etcdClientPort, cp.etcdPeerPort, cp.apiserverPort}
	cp.Stop()
	assertNothingRunning(t, cp.Dir, pids, ports)
}

// killAndRestart SIGKILLs s, checks the process is gone, and restarts it.
func killAndRestart(t *testing.T, s *Signet) {
	t.Helper()
	old := s.Pid()
	s.Kill()
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Kill: %v", old, err)
	}
	start := time.Now()
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.Pid() == old {
		t.Errorf("Restart kept pid %d", old)
	}
	t.Logf("%s restarted and Available again in %s", s.name, time.Since(start).Round(time.Millisecond))
}

// requireSignet skips t while cmd/signet-apiserver does not exist yet, unless
// SIGNET_BIN_DIR says where a built one is.
func requireSignet(t *testing.T) {
	t.Helper()
	if os.Getenv("SIGNET_BIN_DIR") != "" {
		RequireBinaries(t, signetBinaryName)
		return
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", signetBinaryName)); err != nil {
		t.Skipf("skipping: ./cmd/%s does not exist yet", signetBinaryName)
	}
}

// assertNothingRunning checks that pids are gone, ports are free again and no
// process mentions dir on its command line.
func assertNothingRunning(t *testing.T, dir string, pids, ports []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after Stop: %v", pid, err)
		}
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Errorf("port %d still in use after Stop: %v", port, err)
			continue
		}
		l.Close()
	}
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(procs) == 0 {
		t.Logf("no /proc: not scanning for leftover processes")
		return
	}
	for _, path := range procs {
		cmdline, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		if bytes.Contains(cmdline, []byte(dir)) {
			t.Errorf("process %s still running: %s", filepath.Base(filepath.Dir(path)), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}
