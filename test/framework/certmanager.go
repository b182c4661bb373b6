package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// certManagerModule is the module whose deploy/crds the tests apply; its
// version is pinned by hack/tools/certmanager/go.mod.
const certManagerModule = "github.com/cert-manager/cert-manager"

// CertManagerCRDs are cert-manager's CRDs for its issuers and
// CertificateRequests, the files of deploy/crds that signet's tests apply.
var CertManagerCRDs = []string{
	"cert-manager.io_certificaterequests.yaml",
	"cert-manager.io_issuers.yaml",
	"cert-manager.io_clusterissuers.yaml",
}

// CertManagerCRDDir is deploy/crds of the cert-manager module pinned by
// hack/tools/certmanager, as the Go module cache holds it: `go mod download`
// there fetches the module from the module proxy (checked against go.sum)
// the first time, and only reads the cache afterwards. Nothing of
// cert-manager is copied into the repository.
func CertManagerCRDDir(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", certManagerModule)
	cmd.Dir = filepath.Join(root, "hack", "tools", "certmanager")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download %s in %s: %w: %s", certManagerModule, cmd.Dir, err, strings.TrimSpace(errOut.String()+out.String()))
	}
	var mod struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out.Bytes(), &mod); err != nil {
		return "", fmt.Errorf("go mod download %s: reading its answer: %w", certManagerModule, err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s (no module directory)", certManagerModule, mod.Error)
	}
	dir := filepath.Join(mod.Dir, "deploy", "crds")
	for _, f := range CertManagerCRDs {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("cert-manager %s: %w", mod.Version, err)
		}
	}
	return dir, nil
}

// InstallCertManagerCRDs applies cert-manager's own CRDs for
// CertificateRequests, Issuers and ClusterIssuers (CertManagerCRDs), which
// replace the Issuer CRDs of artifacts/crds if those were installed.
func (cp *ControlPlane) InstallCertManagerCRDs(ctx context.Context) error {
	dir, err := CertManagerCRDDir(ctx)
	if err != nil {
		return err
	}
	paths := make([]string, len(CertManagerCRDs))
	for i, f := range CertManagerCRDs {
		paths[i] = filepath.Join(dir, f)
	}
	_, err = cp.InstallCRDFiles(ctx, paths...)
	return err
}
