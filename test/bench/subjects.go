package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/test/framework"
)

// Subject keys: results and ratios find subjects by these.
const (
	keyCeiling    = "ceiling"
	keyCeilingSAR = "ceiling-sar"
	keySignet     = "signet"
	keyKCM        = "kcm-defaults"
	keyKCMQPS     = "kcm-qps5000"
	keyNone       = "none"
)

// burstKind is one burst scenario: its name, the requester key, and whether
// every CSR has a requester of its own.
type burstKind struct {
	scenario string
	key      int // index into bench.keys
	distinct bool
	title    string
}

var burstKinds = []burstKind{
	{"csr-burst", 0, false, "CSR burst, one requester, ECDSA P-256 requester keys (16 approvers; approval → certificate seen)"},
	{"csr-burst-rsa2048", 1, false, "CSR burst, one requester, RSA-2048 requester keys (CA ECDSA P-256)"},
	{"csr-burst-distinct", 0, true, "CSR burst, a distinct requester per CSR, ECDSA P-256 requester keys"},
}

// selected says whether the -scenarios flag asks for this burst kind:
// "burst" is the one-requester bursts, "distinct" the other.
func (k burstKind) selected(scenarios map[string]bool) bool {
	if k.distinct {
		return scenarios["distinct"]
	}
	return scenarios["burst"]
}

// subject is one signer under test: something that can be started and stopped.
type subject struct {
	key        string
	name       string
	signerName string
	// bursts are the burst scenarios the subject takes part in; drainIdle
	// says whether it takes part in the drain and idle scenarios.
	bursts    []string
	drainIdle bool
	start     func(context.Context) error
	stop      func()
	// pid is the subject's process, whose CPU and memory are measured.
	pid func() int
	// profile, if set, saves a CPU profile of the subject to file, taken
	// while its first burst of each kind runs.
	profile func(ctx context.Context, file string) error
}

func (s *subject) runs(scenario string) bool {
	for _, b := range s.bursts {
		if b == scenario {
			return true
		}
	}
	return false
}

// ceilingSubject runs the ceiling (ceiling.go) as a child process; with sar,
// the SubjectAccessReview ceiling for the bench signer bench/ca.
func (b *bench) ceilingSubject(leavesFile, dir string, sar bool) (*subject, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cfg := ceilingConfig{kubeconfig: b.cp.KubeconfigPath, leavesFile: leavesFile, writers: b.writers}
	s := &subject{key: keyCeiling, name: fmt.Sprintf("ceiling (precomputed certificate, %d writers)", b.writers),
		signerName: "bench.example.com/ceiling", bursts: []string{"csr-burst", "csr-burst-rsa2048"}, drainIdle: true}
	if sar {
		cfg.referenceNamespace, cfg.referenceName = "bench", "ca"
		s.key, s.name = keyCeilingSAR, fmt.Sprintf("SubjectAccessReview ceiling (one review per CSR + precomputed certificate, %d writers)", b.writers)
		s.signerName, s.bursts, s.drainIdle = "bench.example.com/ceiling-sar", []string{"csr-burst-distinct"}, false
	}
	cfg.signerName = s.signerName
	var cmd *exec.Cmd
	s.start = func(ctx context.Context) error {
		log, err := os.OpenFile(filepath.Join(dir, s.key+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer log.Close()
		cmd = exec.Command(self, cfg.args()...)
		cmd.Stderr = log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		ready := make(chan error, 1)
		go func() {
			line, err := bufio.NewReader(out).ReadString('\n')
			if err == nil && strings.TrimSpace(line) != "ready" {
				err = fmt.Errorf("said %q", line)
			}
			ready <- err
			_, _ = io.Copy(io.Discard, out)
		}()
		select {
		case err = <-ready:
		case <-time.After(time.Minute):
			err = fmt.Errorf("not ready within a minute")
		}
		if err != nil {
			s.stop()
			return fmt.Errorf("%s: %w (log: %s)", s.name, err, log.Name())
		}
		return nil
	}
	s.stop = func() {
		if cmd != nil {
			stopProcess(cmd, syscall.SIGTERM, false)
			cmd = nil
		}
	}
	s.pid = func() int {
		if cmd == nil || cmd.Process == nil {
			return 0
		}
		return cmd.Process.Pid
	}
	return s, nil
}

// writeLeaves writes what the ceilings sign with: each request key's
// request PEM → certificate PEM.
func (b *bench) writeLeaves(dir string) (string, error) {
	leaves := map[string][]byte{}
	for _, k := range b.keys {
		leaves[string(k.request)] = k.leaf
	}
	js, err := json.Marshal(leaves)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "ceiling-certificates.json")
	return path, os.WriteFile(path, js, 0o600)
}

// signetSubject is signet at its defaults, signing through the namespaced CA
// Issuer bench/ca, so the reference check is in the path.
func signetSubject(sig *framework.Signet, pprof bool) *subject {
	s := &subject{
		key:        keySignet,
		name:       "signet (defaults, namespaced CA Issuer)",
		signerName: "issuers.cert-manager.io/bench.ca",
		bursts:     []string{"csr-burst", "csr-burst-rsa2048", "csr-burst-distinct"},
		drainIdle:  true,
		start:      func(ctx context.Context) error { return sig.Restart(ctx) },
		stop:       sig.Stop,
		pid:        sig.Pid,
	}
	if pprof {
		s.profile = func(ctx context.Context, file string) error {
			return fetchProfile(ctx, sig, "/debug/pprof/profile?seconds=10", file)
		}
	}
	return s
}

// kcmSubject runs kube-controller-manager with only the CSR signing
// controller, signing kubernetes.io/kube-apiserver-client with the same CA.
// Like every subject it is the admin towards kube-apiserver, and it talks
// protobuf and drops managedFields from its informers by default.
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
	args := []string{
		"--kubeconfig=" + cp.KubeconfigPath,
		"--controllers=certificatesigningrequest-signing-controller",
		"--cluster-signing-kube-apiserver-client-cert-file=" + certFile,
		"--cluster-signing-kube-apiserver-client-key-file=" + keyFile,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--use-service-account-credentials=false",
	}
	s := &subject{key: keyKCM, name: "kube-controller-manager (defaults)", signerName: "kubernetes.io/kube-apiserver-client",
		bursts: []string{"csr-burst", "csr-burst-rsa2048"}, drainIdle: true}
	if qps > 0 {
		s.key, s.name = keyKCMQPS, fmt.Sprintf("kube-controller-manager (client QPS %d)", qps)
		args = append(args, fmt.Sprintf("--kube-api-qps=%d", qps), fmt.Sprintf("--kube-api-burst=%d", qps))
	}
	var cmd *exec.Cmd
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
		if cmd != nil {
			stopProcess(cmd, syscall.SIGTERM, true)
			cmd = nil
		}
	}
	s.pid = func() int {
		if cmd == nil || cmd.Process == nil {
			return 0
		}
		return cmd.Process.Pid
	}
	return s, nil
}

// stopProcess sends sig (to the process group with group) and SIGKILL
// after 10 s, and waits for the process to exit.
func stopProcess(cmd *exec.Cmd, sig syscall.Signal, group bool) {
	if cmd.Process == nil {
		return
	}
	pid := cmd.Process.Pid
	if group {
		pid = -pid
	}
	_ = syscall.Kill(pid, sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
	}
}
