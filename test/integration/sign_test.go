package integration

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/generated/clientset/versioned"
)

// allowSign gives user create on <resource>/sign in ns (cluster-wide if ns is "").
func allowSign(t *testing.T, ns, resource, user string) {
	t.Helper()
	ctx := context.Background()
	rule := rbacv1.PolicyRule{APIGroups: []string{"cert-manager.io"}, Resources: []string{resource + "/sign"}, Verbs: []string{"create"}}
	subject := []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}
	name := "sign-" + user
	if ns == "" {
		if _, err := env.kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{rule}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}, Subjects: subject}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := env.kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{rule}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}, Subjects: subject}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func signAs(user string) versioned.Interface {
	return versioned.NewForConfigOrDie(env.cp.UserConfig(user))
}

func TestSignSubresource(t *testing.T) {
	ctx := context.Background()
	createNamespace(t, "sign")
	createNamespace(t, "cert-manager")
	ca := newCA(t, testpki.CAOptions{CommonName: "sign CA"})
	putCASecret(t, "sign", "ca", ca.CertPEM(), ca.KeyPEM())
	putCASecret(t, "cert-manager", "sign-cluster-ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, "sign", "ca", nil, caSpec("ca"))
	createIssuer(t, "sign", "self", nil, selfSignedSpec())
	createIssuer(t, "", "sign-cluster", nil, caSpec("sign-cluster-ca"))
	allowSign(t, "sign", "signers", "signer-alice")
	allowSign(t, "", "clustersigners", "signer-carol")
	eventually(t, "signers ready", func() (bool, error) {
		s, err := env.signer.CertManagerV1alpha1().Signers("sign").Get(ctx, "ca", metav1.GetOptions{})
		return err == nil && s.Status.Conditions[0].Status == metav1.ConditionTrue, nil
	})
	eventually(t, "RBAC for signer-alice", func() (bool, error) {
		out, _, _ := env.cp.Kubectl(ctx, "auth", "can-i", "create", "signers.cert-manager.io/sign", "-n", "sign", "--as=signer-alice", "--subresource=sign")
		return strings.TrimSpace(out) == "yes", nil
	})

	for _, kt := range []testpki.KeyType{testpki.ECDSAP256, testpki.RSA2048, testpki.Ed25519} {
		r := &csrRequest{commonName: "sync " + string(kt), dnsNames: []string{"sync.example.com"}, keyType: kt}
		sr := &v1alpha1.SigningRequest{Spec: v1alpha1.SigningRequestSpec{
			Request: pkcs10(t, r), ExpirationSeconds: ptr.To[int32](3600), Usages: []string{"digital signature", "server auth"},
		}}
		out, err := signAs("signer-alice").CertManagerV1alpha1().Signers("sign").Sign(ctx, "ca", sr, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: sign: %v", kt, err)
		}
		certs := parsePEMCerts(t, out.Status.Certificate)
		goVerify(t, ca.Cert, certs, x509.ExtKeyUsageServerAuth)
		opensslVerify(t, out.Status.CA, out.Status.Certificate)
		if certs[0].DNSNames[0] != "sync.example.com" || certs[0].NotAfter.Sub(certs[0].NotBefore) != time.Hour || !out.Status.NotAfter.Time.Equal(certs[0].NotAfter) {
			t.Errorf("%s: certificate %v valid until %s (status %s)", kt, certs[0].DNSNames, certs[0].NotAfter, out.Status.NotAfter)
		}
	}

	good := &v1alpha1.SigningRequest{Spec: v1alpha1.SigningRequestSpec{Request: pkcs10(t, &csrRequest{commonName: "x"})}}
	// Cluster signers, for a user allowed on clustersigners/sign.
	if _, err := signAs("signer-carol").CertManagerV1alpha1().ClusterSigners().Sign(ctx, "sign-cluster", good, metav1.CreateOptions{}); err != nil {
		t.Errorf("clustersigners/sign: %v", err)
	}
	// Without create on signers/sign: 403; in another namespace too.
	if _, err := signAs("signer-mallory").CertManagerV1alpha1().Signers("sign").Sign(ctx, "ca", good, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("user without RBAC: err = %v, want 403", err)
	}
	if _, err := signAs("signer-carol").CertManagerV1alpha1().Signers("sign").Sign(ctx, "ca", good, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("clustersigners permission used on signers: err = %v, want 403", err)
	}
	// Signers that cannot sign synchronously, or do not exist.
	if _, err := env.signer.CertManagerV1alpha1().Signers("sign").Sign(ctx, "self", good, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "SelfSigned") {
		t.Errorf("SelfSigned signer: err = %v, want 400 naming SelfSigned", err)
	}
	if _, err := env.signer.CertManagerV1alpha1().Signers("sign").Sign(ctx, "nope", good, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unknown signer: err = %v, want 404", err)
	}

	// Malformed, badly signed and oversized requests: 4xx naming the problem.
	for _, tc := range []struct {
		desc    string
		request []byte
		want    string
	}{
		{"not PEM", []byte("hello"), "ErrorParseCSR"},
		{"a key instead of a request", testpki.KeyPEM(mustKey(t)), "ErrorParseCSR"},
		{"bad signature", rawCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tampered"}}, true), "InvalidCSRSignature"},
		{"100 KiB request", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: make([]byte, 100<<10)}), "RequestTooLarge"},
	} {
		sr := &v1alpha1.SigningRequest{Spec: v1alpha1.SigningRequestSpec{Request: tc.request}}
		_, err := env.signer.CertManagerV1alpha1().Signers("sign").Sign(ctx, "ca", sr, metav1.CreateOptions{})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want 400 with %s", tc.desc, err, tc.want)
		}
	}
	// A body over the server's limit is refused before it is parsed.
	body := `{"apiVersion":"cert-manager.io/v1alpha1","kind":"SigningRequest","spec":{"request":"` + strings.Repeat("A", 400<<10) + `"}}`
	raw := env.kube.Discovery().RESTClient().Post().AbsPath("/apis/cert-manager.io/v1alpha1/namespaces/sign/signers/ca/sign").
		SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx)
	var code int
	raw.StatusCode(&code)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("400 KiB body: HTTP %d, want 413", code)
	}

	// Discovery lists the subresource with the create verb.
	var legacy metav1.APIResourceList
	b, err := env.kube.Discovery().RESTClient().Get().AbsPath("/apis/cert-manager.io/v1alpha1").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &legacy); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range legacy.APIResources {
		if (r.Name == "signers/sign" || r.Name == "clustersigners/sign") && r.Kind == "SigningRequest" && strings.Join(r.Verbs, ",") == "create" {
			found++
		}
	}
	if found != 2 {
		t.Errorf("discovery lists %d of signers/sign, clustersigners/sign with create: %+v", found, legacy.APIResources)
	}

	// Every issuance is in kube-apiserver's audit log, with who asked.
	eventually(t, "sign requests in the audit log", func() (bool, error) {
		b, err := os.ReadFile(env.auditLog)
		if err != nil {
			return false, err
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			var ev struct {
				User      struct{ Username string } `json:"user"`
				ObjectRef struct {
					Resource, Subresource, Namespace, Name string
				} `json:"objectRef"`
				ResponseStatus struct{ Code int } `json:"responseStatus"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.User.Username == "signer-alice" && ev.ObjectRef.Resource == "signers" &&
				ev.ObjectRef.Subresource == "sign" && ev.ObjectRef.Namespace == "sign" && ev.ObjectRef.Name == "ca" && ev.ResponseStatus.Code == http.StatusCreated {
				n++
			}
		}
		return n == 3, nil
	})

	// Every issuance is counted.
	resp, err := http.Get(env.signet.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `signet_sign_requests_total{issuer_kind="Issuer",result="issued"} 3`) {
		t.Errorf("metrics lack 3 issued sign requests:\n%s", grepLines(string(metrics), "signet_sign_requests_total"))
	}
}

// TestSamePolicyOnBothPaths drives each policy violation through a CSR and
// through the sign subresource and expects the same reason from both.
func TestSamePolicyOnBothPaths(t *testing.T) {
	ctx := context.Background()
	createNamespace(t, "policy")
	ca := newCA(t, testpki.CAOptions{})
	putCASecret(t, "policy", "ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, "policy", "ca", nil, caSpec("ca"))
	eventually(t, "signer ready", func() (bool, error) {
		s, err := env.signer.CertManagerV1alpha1().Signers("policy").Get(ctx, "ca", metav1.GetOptions{})
		return err == nil && s.Status.Conditions[0].Status == metav1.ConditionTrue, nil
	})
	bcTrue := extension(t, asn1.ObjectIdentifier{2, 5, 29, 19}, struct {
		IsCA bool `asn1:"optional"`
	}{true})
	ekuServer := extension(t, asn1.ObjectIdentifier{2, 5, 29, 37}, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	manySANs := make([]string, 1500)
	for i := range manySANs {
		manySANs[i] = "h" + strconv.Itoa(i) + ".example.com"
	}
	type both struct {
		desc string
		csr  csrRequest                  // the CSR path's way of asking
		sign v1alpha1.SigningRequestSpec // the sign path's way of asking the same
		want string
	}
	isCARequest := rawCSR(t, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{bcTrue}}, false)
	serverRequest := rawCSR(t, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{ekuServer}}, false)
	sans := &csrRequest{dnsNames: manySANs}
	sansRequest := pkcs10(t, sans)
	cases := []both{
		{"duration under 10 minutes", csrRequest{annotations: map[string]string{"experimental.cert-manager.io/request-duration": "9m"}},
			v1alpha1.SigningRequestSpec{Request: pkcs10(t, &csrRequest{}), ExpirationSeconds: ptr.To[int32](540)}, "InvalidDuration"},
		{"request encodes CA, not asked for", csrRequest{rawRequest: isCARequest},
			v1alpha1.SigningRequestSpec{Request: isCARequest}, "IsCAMismatch"},
		{"request encodes server auth, usages say client auth", csrRequest{rawRequest: serverRequest, usages: nil},
			v1alpha1.SigningRequestSpec{Request: serverRequest, Usages: []string{"digital signature", "key encipherment", "client auth"}}, "KeyUsageMismatch"},
		{"1500 SANs", csrRequest{rawRequest: sansRequest},
			v1alpha1.SigningRequestSpec{Request: sansRequest}, "RequestTooLarge"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			r := tc.csr
			r.signerName = "issuers.cert-manager.io/policy.ca"
			name := createCSR(t, &r)
			approve(t, name)
			o := waitOutcome(t, name, 30*time.Second)
			if o.failed == nil || o.failed.Reason != tc.want {
				t.Errorf("CSR path: %+v, want Failed/%s", o.failed, tc.want)
			}
			_, err := env.signer.CertManagerV1alpha1().Signers("policy").Sign(ctx, "ca", &v1alpha1.SigningRequest{Spec: tc.sign}, metav1.CreateOptions{})
			var status apierrors.APIStatus
			if !apierrors.IsBadRequest(err) || !errorsAs(err, &status) || status.Status().Details == nil ||
				len(status.Status().Details.Causes) != 1 || string(status.Status().Details.Causes[0].Type) != tc.want {
				t.Errorf("sign path: %v, want 400 with cause %s", err, tc.want)
			}
		})
	}
}

func errorsAs(err error, target *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*target = s
	}
	return ok
}

func mustKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parsePEMCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in the response")
	}
	return out
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
