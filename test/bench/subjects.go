package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/test/framework"
)

// subject is one signer under test: something that can be started and stopped.
type subject struct {
	name       string
	signerName string
	start      func(context.Context) error
	stop       func()
	// profile, if set, saves a CPU profile of the subject taken while its
	// P-256 burst runs.
	profile func(context.Context) error
}

func ceilingSubject(kube kubernetes.Interface, leaves map[string][]byte, writers int) *subject {
	s := &subject{name: fmt.Sprintf("ceiling (precomputed certificate, %d writers)", writers), signerName: "bench.example.com/ceiling"}
	var stop func()
	s.start = func(ctx context.Context) error {
		stop = startCeiling(ctx, kube, s.signerName, leaves, writers)
		return nil
	}
	s.stop = func() {
		if stop != nil {
			stop()
			stop = nil
		}
	}
	return s
}

// signetSubject is signet at its defaults; with profileTo set, a 10 s CPU
// profile of its burst is saved there.
func signetSubject(sig *framework.Signet, profileTo string) *subject {
	s := &subject{
		name:       "signet (defaults, namespaced CA Issuer)",
		signerName: "issuers.cert-manager.io/bench.ca",
		start:      func(ctx context.Context) error { return sig.Restart(ctx) },
		stop:       sig.Stop,
	}
	if profileTo != "" {
		s.profile = func(ctx context.Context) error {
			return fetchProfile(ctx, sig, "/debug/pprof/profile?seconds=10", profileTo)
		}
	}
	return s
}

// kcmSubject runs kube-controller-manager with only the CSR signing
// controller, signing kubernetes.io/kube-apiserver-client with the same CA.
func kcmSubject(cp *framework.ControlPlane, ca *testpki.CA, dir string, qps int) (*subject, error) {
	bin, err := framework.Binary("kube-controller-manager")
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "kcm-ca.crt"), filepath.Join(dir, "kcm-ca.key")
	if err := os.WriteFile(certFile, ca.CertPEM(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, ca.KeyPEM(), 0o600); err != nil {
		return nil, err
	}
	name := "kube-controller-manager (defaults)"
	args := []string{
		"--kubeconfig=" + cp.KubeconfigPath,
		"--controllers=certificatesigningrequest-signing-controller",
		"--cluster-signing-kube-apiserver-client-cert-file=" + certFile,
		"--cluster-signing-kube-apiserver-client-key-file=" + keyFile,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--use-service-account-credentials=false",
	}
	if qps > 0 {
		name = fmt.Sprintf("kube-controller-manager (client QPS %d)", qps)
		args = append(args, fmt.Sprintf("--kube-api-qps=%d", qps), fmt.Sprintf("--kube-api-burst=%d", qps))
	}
	var cmd *exec.Cmd
	s := &subject{name: name, signerName: "kubernetes.io/kube-apiserver-client"}
	s.start = func(ctx context.Context) error {
		log, err := os.OpenFile(filepath.Join(dir, "kube-controller-manager.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		cmd = exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		return cmd.Start()
	}
	s.stop = func() {
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			cmd = nil
		}
	}
	return s, nil
}
