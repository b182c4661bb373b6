package integration

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/testpki"
)

// TestControllerFlags: --write-ca-annotation, --max-duration and
// --cluster-signer-reference-check, with a signet started with them.
func TestControllerFlags(t *testing.T) {
	createNamespace(t, "flags")
	createNamespace(t, "cert-manager")
	ca := newCA(t, testpki.CAOptions{CommonName: "flags CA"})
	putCASecret(t, "flags", "ca", ca.CertPEM(), ca.KeyPEM())
	putCASecret(t, "cert-manager", "flags-cluster-ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, "flags", "ca", nil, caSpec("ca"))
	createIssuer(t, "", "flags-cluster", nil, caSpec("flags-cluster-ca"))
	kubectl(t, "create", "clusterrole", "flags-cluster-ref", "--verb=reference", "--resource=clustersigners.cert-manager.io", "--resource-name=flags-cluster")
	kubectl(t, "create", "clusterrolebinding", "flags-cluster-ref", "--clusterrole=flags-cluster-ref", "--user=flags-allowed")

	withSignet(t, []string{"--write-ca-annotation", "--max-duration=1h", "--cluster-signer-reference-check"}, func() {
		name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/flags.ca", commonName: "capped"})
		approve(t, name)
		o := mustIssue(t, name)
		if life := o.certs[0].NotAfter.Sub(o.certs[0].NotBefore); life != time.Hour {
			t.Errorf("--max-duration=1h: the 90-day default gave a certificate valid for %s", life)
		}
		caPEM, err := base64.StdEncoding.DecodeString(o.csr.Annotations["experimental.cert-manager.io/ca"])
		if err != nil || !strings.Contains(string(caPEM), "BEGIN CERTIFICATE") {
			t.Errorf("--write-ca-annotation: annotation %q (%v)", o.csr.Annotations["experimental.cert-manager.io/ca"], err)
		}

		allowed := createCSR(t, &csrRequest{signerName: "clusterissuers.cert-manager.io/flags-cluster", as: "flags-allowed"})
		denied := createCSR(t, &csrRequest{signerName: "clusterissuers.cert-manager.io/flags-cluster", as: "flags-denied"})
		approve(t, allowed)
		approve(t, denied)
		mustIssue(t, allowed)
		o = waitOutcome(t, denied, 30*time.Second)
		if o.failed == nil || o.failed.Reason != "DeniedReference" || !strings.Contains(o.failed.Message, "ClusterIssuer flags-cluster") {
			t.Errorf("--cluster-signer-reference-check: outcome %+v", o.failed)
		}
	})

	// Without the flag, ClusterIssuers need no reference permission.
	name := createCSR(t, &csrRequest{signerName: "clusterissuers.cert-manager.io/flags-cluster", as: "flags-denied"})
	approve(t, name)
	mustIssue(t, name)
}
