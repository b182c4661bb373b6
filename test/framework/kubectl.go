package framework

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kubectl runs the built kubectl as the admin and returns its output. A
// non-zero exit is an error that quotes stderr.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return cp.KubectlWithInput(ctx, cp.KubeconfigPath, nil, args...)
}

// KubectlAs runs the built kubectl with the given kubeconfig, e.g. one from
// WriteUserKubeconfig.
func (cp *ControlPlane) KubectlAs(ctx context.Context, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	return cp.KubectlWithInput(ctx, kubeconfig, nil, args...)
}

// KubectlWithInput runs the built kubectl with the given kubeconfig (the
// admin's if empty) and stdin, e.g. for `apply -f -`.
func (cp *ControlPlane) KubectlWithInput(ctx context.Context, kubeconfig string, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	bin, err := Binary("kubectl")
	if err != nil {
		return "", "", err
	}
	if kubeconfig == "" {
		kubeconfig = cp.KubeconfigPath
	}
	// A discovery cache per control plane: the default one is keyed by
	// host:port, and ports are reused by later control planes with other APIs.
	full := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(cp.Dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	cmd.SysProcAttr = childSysProcAttr()
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// WriteUserKubeconfig writes a kubeconfig into Dir that authenticates as user
// in groups (see UserConfig) and returns its path. Each call writes a new file.
func (cp *ControlPlane) WriteUserKubeconfig(user string, groups ...string) (path string, err error) {
	f, err := os.CreateTemp(cp.Dir, "kubeconfig-"+fileSafe(user)+"-*")
	if err != nil {
		return "", err
	}
	path = f.Name()
	f.Close()
	if err := writeKubeconfig(path, cp.UserConfig(user, groups...), fileSafe(user)); err != nil {
		return "", err
	}
	return path, nil
}

// fileSafe maps a user name such as system:serviceaccount:ns:sa to something
// usable in a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// IssuerCRDDir is <repo root>/artifacts/crds, where the cert-manager Issuer and
// ClusterIssuer CRDs signet serves signers for are kept.
func IssuerCRDDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "artifacts", "crds"), nil
}

// InstallCRDs applies every manifest in dir with kubectl (server-side, as CRDs
// are too large for the last-applied annotation), waits until every
// CustomResourceDefinition among them is Established, and returns the applied
// objects as kubectl names them (kind.group/name).
func (cp *ControlPlane) InstallCRDs(ctx context.Context, dir string) ([]string, error) {
	return cp.InstallCRDFiles(ctx, dir)
}

// InstallCRDFiles is InstallCRDs for manifest files or directories.
func (cp *ControlPlane) InstallCRDFiles(ctx context.Context, paths ...string) ([]string, error) {
	args := []string{"apply", "--server-side", "-o", "name"}
	for _, p := range paths {
		args = append(args, "-f", p)
	}
	out, _, err := cp.Kubectl(ctx, args...)
	if err != nil {
		return nil, err
	}
	names := strings.Fields(out)
	var crds []string
	for _, n := range names {
		if strings.HasPrefix(n, "customresourcedefinition.apiextensions.k8s.io/") {
			crds = append(crds, n)
		}
	}
	if len(crds) > 0 {
		args := append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, crds...)
		if _, _, err := cp.Kubectl(ctx, args...); err != nil {
			return names, err
		}
	}
	return names, nil
}
