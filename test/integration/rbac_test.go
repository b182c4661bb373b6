package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/controller/trustbundles"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/pkg/issuers"
	"github.com/signet-dev/signet/test/framework"
	"github.com/signet-dev/signet/test/framework/fakecertmanager"
)

// deployDir is artifacts/deploy, the manifests signet ships.
func deployDir(t *testing.T) string {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "artifacts", "deploy")
}

// splitManifests splits a multi-document YAML stream into its documents,
// each with its kind.
func splitManifests(t *testing.T, data []byte) (docs [][]byte, kinds []string) {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, kinds
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "" {
			continue // a document of comments only
		}
		docs, kinds = append(docs, doc), append(kinds, meta.Kind)
	}
}

// shippedRBAC is the ServiceAccount, roles and bindings in artifacts/deploy,
// exactly as shipped.
type shippedRBAC struct {
	serviceAccount      *corev1.ServiceAccount
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
	roles               []*rbacv1.Role
	roleBindings        []*rbacv1.RoleBinding
}

func readShippedRBAC(t *testing.T) *shippedRBAC {
	t.Helper()
	var s shippedRBAC
	for _, file := range []string{"serviceaccount.yaml", "clusterrole.yaml", "rbac.yaml"} {
		data, err := os.ReadFile(filepath.Join(deployDir(t), file))
		if err != nil {
			t.Fatal(err)
		}
		docs, kinds := splitManifests(t, data)
		for i, doc := range docs {
			var obj interface{}
			switch kinds[i] {
			case "ServiceAccount":
				s.serviceAccount = &corev1.ServiceAccount{}
				obj = s.serviceAccount
			case "ClusterRole":
				s.clusterRoles = append(s.clusterRoles, &rbacv1.ClusterRole{})
				obj = s.clusterRoles[len(s.clusterRoles)-1]
			case "ClusterRoleBinding":
				s.clusterRoleBindings = append(s.clusterRoleBindings, &rbacv1.ClusterRoleBinding{})
				obj = s.clusterRoleBindings[len(s.clusterRoleBindings)-1]
			case "Role":
				s.roles = append(s.roles, &rbacv1.Role{})
				obj = s.roles[len(s.roles)-1]
			case "RoleBinding":
				s.roleBindings = append(s.roleBindings, &rbacv1.RoleBinding{})
				obj = s.roleBindings[len(s.roleBindings)-1]
			default:
				t.Fatalf("%s: unexpected kind %s", file, kinds[i])
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		}
	}
	if s.serviceAccount == nil || len(s.clusterRoles) != 1 || len(s.clusterRoleBindings) != 2 || len(s.roles) != 1 || len(s.roleBindings) != 2 {
		t.Fatalf("artifacts/deploy RBAC: want 1 ServiceAccount, 1 ClusterRole, 2 ClusterRoleBindings, 1 Role, 2 RoleBindings; got %d/%d/%d/%d/%d",
			btoi(s.serviceAccount != nil), len(s.clusterRoles), len(s.clusterRoleBindings), len(s.roles), len(s.roleBindings))
	}
	return &s
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// apply creates or replaces every object of s in the test cluster.
func (s *shippedRBAC) apply(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rbac := env.kube.RbacV1()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("applying %s: %v", what, err)
		}
	}
	if _, err := env.kube.CoreV1().ServiceAccounts(s.serviceAccount.Namespace).Create(ctx, s.serviceAccount, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		check("ServiceAccount", err)
	}
	for _, r := range s.clusterRoles {
		check("ClusterRole "+r.Name, upsert(r.DeepCopy(),
			func(o *rbacv1.ClusterRole) (*rbacv1.ClusterRole, error) {
				return rbac.ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
			},
			func(o *rbacv1.ClusterRole) (*rbacv1.ClusterRole, error) {
				return rbac.ClusterRoles().Update(ctx, o, metav1.UpdateOptions{})
			}))
	}
	for _, b := range s.clusterRoleBindings {
		// A binding's roleRef is immutable: replace it.
		_ = rbac.ClusterRoleBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})
		_, err := rbac.ClusterRoleBindings().Create(ctx, b.DeepCopy(), metav1.CreateOptions{})
		check("ClusterRoleBinding "+b.Name, err)
	}
	for _, r := range s.roles {
		check("Role "+r.Namespace+"/"+r.Name, upsert(r.DeepCopy(),
			func(o *rbacv1.Role) (*rbacv1.Role, error) {
				return rbac.Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			},
			func(o *rbacv1.Role) (*rbacv1.Role, error) {
				return rbac.Roles(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
			}))
	}
	for _, b := range s.roleBindings {
		_ = rbac.RoleBindings(b.Namespace).Delete(ctx, b.Name, metav1.DeleteOptions{})
		_, err := rbac.RoleBindings(b.Namespace).Create(ctx, b.DeepCopy(), metav1.CreateOptions{})
		check("RoleBinding "+b.Namespace+"/"+b.Name, err)
	}
}

// upsert creates obj, or updates it (with no resourceVersion: last write wins)
// if it exists.
func upsert[T any](obj T, create, update func(T) (T, error)) error {
	_, err := create(obj)
	if apierrors.IsAlreadyExists(err) {
		_, err = update(obj)
	}
	return err
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates to
// kube-apiserver with a bound token of the service account, as the projected
// token in the shipped Deployment does.
func serviceAccountKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	expiry := int64(3600)
	tr, err := env.kube.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for service account %s/%s: %v", namespace, name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: env.cp.URL, CertificateAuthorityData: env.cp.PKI.ServingCA.CertPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name}
	cfg.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig-"+name)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// withSignetAs runs f with the shared signet replaced by one started with
// opts, after deleting the leader Lease so that the new signet must create
// it, and puts the usual one back afterwards.
func withSignetAs(t *testing.T, opts framework.SignetOptions, f func(s *framework.Signet)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.signet.Stop()
	var s *framework.Signet
	// Put the shared signet back whatever happens, or every later test fails.
	defer func() {
		if s != nil {
			if t.Failed() {
				t.Logf("log of the signet under test: %s", s.LogPath)
			}
			s.Stop()
		}
		back, err := framework.StartSignet(ctx, env.cp, framework.SignetOptions{ExtraArgs: baseSignetArgs})
		if err != nil {
			t.Fatalf("restarting the shared signet: %v", err)
		}
		env.signet = back
	}()
	err := env.kube.CoordinationV1().Leases(framework.SignetNamespace).Delete(ctx, "signet", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	s, err = framework.StartSignet(ctx, env.cp, opts)
	if err != nil {
		t.Fatal(err)
	}
	f(s)
}

// TestShippedRBACIsEnough runs signet as its service account with exactly the
// roles and bindings in artifacts/deploy — no cluster-admin — and drives every
// path that talks to kube-apiserver: delegated authentication and
// authorization, the read model's Issuer and Secret watches, the Lease, the
// reference check, status writes and events.
func TestShippedRBACIsEnough(t *testing.T) {
	shipped := readShippedRBAC(t)
	shipped.apply(t)
	sa := shipped.serviceAccount
	kubeconfig := serviceAccountKubeconfig(t, sa.Namespace, sa.Name)

	createNamespace(t, "rbac-ca")
	ca := newCA(t, testpki.CAOptions{CommonName: "rbac CA"})
	putCASecret(t, "rbac-ca", "ca", ca.CertPEM(), ca.KeyPEM())
	createIssuer(t, "rbac-ca", "team-ca", nil, caSpec("ca"))
	kubectl(t, "create", "role", "reference-team-ca", "-n", "rbac-ca", "--verb=reference", "--resource=signers.cert-manager.io", "--resource-name=team-ca")
	kubectl(t, "create", "rolebinding", "reference-team-ca", "-n", "rbac-ca", "--role=reference-team-ca", "--user=rbac-alice")

	// A Vault Issuer signs through cert-manager: its CertificateRequest CRD
	// (cert-manager's own, from the module cache) and a fake cert-manager.
	crdDir, err := framework.CertManagerCRDDir(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.cp.InstallCRDFiles(t.Context(), filepath.Join(crdDir, "cert-manager.io_certificaterequests.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := fakecertmanager.Start(t.Context(), env.cp.AdminConfig); err != nil {
		t.Fatal(err)
	}
	createNamespace(t, "rbac-vault")
	createIssuer(t, "rbac-vault", "vault", nil, map[string]interface{}{"vault": map[string]interface{}{"server": "https://vault", "path": "pki/sign/x"}})
	if err := fakecertmanager.SetIssuerReady(t.Context(), env.dyn, issuers.IssuerGVR, "rbac-vault", "vault", true, "VaultVerified", "Vault verified"); err != nil {
		t.Fatal(err)
	}

	createNamespace(t, "rbac-self")
	createIssuer(t, "rbac-self", "self", nil, selfSignedSpec())
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	putCASecret(t, "rbac-self", "app-key", nil, testpki.KeyPEM(key))

	// --write-ca-annotation exercises the one rule only that flag needs;
	// --certificate-issued-events, that events can be written.
	args := append(slices.Clone(baseSignetArgs), "--write-ca-annotation", "--certificate-issued-events")
	withSignetAs(t, framework.SignetOptions{Kubeconfig: kubeconfig, ExtraArgs: args}, func(s *framework.Signet) {
		if !slices.Contains(s.Args, "--kubeconfig="+kubeconfig) || !slices.Contains(s.Args, "--authorization-kubeconfig="+kubeconfig) {
			t.Fatalf("signet args %v do not use the service account's kubeconfig", s.Args)
		}

		t.Run("LeaseCreated", func(t *testing.T) {
			eventually(t, "the Lease signet-system/signet to be held", func() (bool, error) {
				l, err := env.kube.CoordinationV1().Leases(framework.SignetNamespace).Get(context.Background(), "signet", metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", nil
			})
		})

		t.Run("KubectlGetSignersThroughTheAggregator", func(t *testing.T) {
			eventually(t, "rbac-ca/team-ca to be listed Ready", func() (bool, error) {
				r, ok := rows(kubectl(t, "get", "signers", "-n", "rbac-ca"), 1)["team-ca"]
				return ok && r[1] == "CA" && r[2] == "True", nil
			})
		})

		t.Run("CAIssuerWithReference", func(t *testing.T) {
			name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/rbac-ca.team-ca", commonName: "alice", as: "rbac-alice"})
			approve(t, name)
			o := mustIssue(t, name)
			if o.certs[0].Issuer.CommonName != "rbac CA" {
				t.Errorf("issuer = %s", o.certs[0].Issuer)
			}
			if o.csr.Annotations["experimental.cert-manager.io/ca"] == "" {
				t.Error("--write-ca-annotation: no experimental.cert-manager.io/ca annotation on the issued CSR")
			}
			waitEvent(t, name, "CertificateIssued")
		})

		t.Run("WithoutReferenceDenied", func(t *testing.T) {
			name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/rbac-ca.team-ca", commonName: "mallory", as: "rbac-mallory"})
			approve(t, name)
			o := waitOutcome(t, name, 30*time.Second)
			if o.failed == nil || o.failed.Reason != "DeniedReference" {
				t.Fatalf("outcome %+v (timeout %v), want Failed/DeniedReference\n%s", o.failed, o.timeout, eventsFor(t, name))
			}
			waitEvent(t, name, "DeniedReference")
		})

		t.Run("SelfSignedReadsTheKeySecret", func(t *testing.T) {
			name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/rbac-self.self", commonName: "self", key: key,
				annotations: map[string]string{"experimental.cert-manager.io/private-key-secret-name": "app-key"}})
			approve(t, name)
			o := mustIssue(t, name)
			if !issuersPublicKeyEqual(o.certs[0], key) {
				t.Error("certificate is not for the requester's key")
			}
		})

		t.Run("VaultIssuerThroughACertificateRequest", func(t *testing.T) {
			name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/rbac-vault.vault", commonName: "vault"})
			approve(t, name)
			mustIssue(t, name)
			csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			list, err := env.dyn.Resource(certificaterequest.GVR).Namespace("rbac-vault").List(context.Background(), metav1.ListOptions{
				LabelSelector: certificaterequest.LabelRequestUID + "=" + string(csr.UID)})
			if err != nil || len(list.Items) != 1 {
				t.Fatalf("%d CertificateRequests for the CSR (%v), want one", len(list.Items), err)
			}
			// Deleting the CSR takes its CertificateRequest (signet's delete).
			if err := env.kube.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			cr := list.Items[0]
			eventually(t, "the CertificateRequest to go with its CSR", func() (bool, error) {
				_, err := env.dyn.Resource(certificaterequest.GVR).Namespace("rbac-vault").Get(context.Background(), cr.GetName(), metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
		})

		// cert-manager's webhook lets only who may approve the signer set
		// Approved on a CertificateRequest; no webhook runs here, so ask
		// kube-apiserver its question (cluster-scoped, name <domain>/*).
		t.Run("MayApproveCertificateRequests", func(t *testing.T) {
			user := "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
			for _, signerName := range []string{"issuers.cert-manager.io/*", "clusterissuers.cert-manager.io/*"} {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
					Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: signerName, Version: "*"}}}
				resp, err := env.kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !resp.Status.Allowed {
					t.Errorf("signet may not approve CertificateRequests for %s: %s", signerName, resp.Status.Reason)
				}
			}
		})

		// The pod certificate rules: the PodCertificateRequest informer and
		// status write (with sign), the ClusterTrustBundle informer and writes
		// (with attest), the reference check for a ServiceAccount.
		t.Run("PodCertificateAndTrustBundle", func(t *testing.T) {
			const signer = "issuers.cert-manager.io/rbac-ca.team-ca"
			allowReference(t, "rbac-ca", "web", "rbac-ca", "team-ca")
			// The signet before this one may have published it: this one must.
			err := env.kube.CertificatesV1().ClusterTrustBundles().Delete(context.Background(), trustbundles.Name(signer), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
			anchors := waitTrustBundle(t, signer, ca.Cert)
			pod := createCertPod(t, "rbac-ca", "web-0", "web", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256"})
			key, pcr := requestPodCertificate(t, pod)
			issuedPodCertificate(t, waitFinished(t, "rbac-ca", pcr.Name), key, anchors, 24*time.Hour)

			pod = createCertPod(t, "rbac-ca", "nobody-0", "nobody", corev1.PodCertificateProjection{SignerName: signer, KeyType: "ECDSAP256"})
			_, pcr = requestPodCertificate(t, pod)
			if got := waitFinished(t, "rbac-ca", pcr.Name); got.Status.Conditions[0].Reason != "DeniedReference" {
				t.Errorf("ServiceAccount without reference: conditions %+v", got.Status.Conditions)
			}
			eventually(t, "a DeniedReference event on the request", func() (bool, error) {
				return strings.Contains(pcrEvents(t, "rbac-ca", pcr.Name), "Warning DeniedReference"), nil
			})
		})

		// Without the Secrets rule a new CA Issuer never becomes ready and its
		// CSRs wait: the test above would notice a role that is too small.
		t.Run("WithoutSecretsRuleNothingIsIssued", func(t *testing.T) {
			role := shipped.clusterRoles[0].DeepCopy()
			role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.Resources, "secrets")
			})
			if len(role.Rules) != len(shipped.clusterRoles[0].Rules)-1 {
				t.Fatalf("want exactly one Secrets rule in ClusterRole %s", role.Name)
			}
			setRules := func(rules []rbacv1.PolicyRule) {
				t.Helper()
				cur, err := env.kube.RbacV1().ClusterRoles().Get(context.Background(), role.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				cur.Rules = rules
				if _, err := env.kube.RbacV1().ClusterRoles().Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			setRules(role.Rules)
			restored := false
			restore := func() {
				if !restored {
					restored = true
					setRules(shipped.clusterRoles[0].Rules)
				}
			}
			defer restore()

			createNamespace(t, "rbac-nosecret")
			other := newCA(t, testpki.CAOptions{})
			putCASecret(t, "rbac-nosecret", "ca", other.CertPEM(), other.KeyPEM())
			createIssuer(t, "rbac-nosecret", "blind", nil, caSpec("ca"))
			name := createCSR(t, &csrRequest{signerName: "issuers.cert-manager.io/rbac-nosecret.blind", commonName: "blind"})
			approve(t, name)
			o := waitOutcome(t, name, 5*time.Second)
			if !o.timeout {
				t.Fatalf("without the Secrets rule: outcome certificate=%d bytes failed=%+v, want still waiting", len(o.csr.Status.Certificate), o.failed)
			}
			sig, err := env.signer.CertManagerV1alpha1().Signers("rbac-nosecret").Get(context.Background(), "blind", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(sig.Status.Conditions) == 0 || sig.Status.Conditions[0].Status == metav1.ConditionTrue {
				t.Errorf("without the Secrets rule, signer rbac-nosecret/blind conditions = %+v, want not Ready", sig.Status.Conditions)
			}
			if log, err := os.ReadFile(s.LogPath); err == nil && !bytes.Contains(log, []byte(`cannot get resource \"secrets\" in API group \"\" in the namespace \"rbac-nosecret\"`)) {
				t.Errorf("signet's log does not mention the forbidden Secret read")
			}
			if c := sig.Status.Conditions; len(c) > 0 && !strings.Contains(c[0].Message, "forbidden") {
				t.Errorf("signer rbac-nosecret/blind says %q, want why the CA Secret cannot be read", c[0].Message)
			}

			// Put the rule back: the read is retried and the CSR is issued.
			restore()
			mustIssue(t, name)
		})
	})
}

// TestKustomizeDeployRendersAndApplies renders artifacts/deploy with the
// built kubectl, checks the hardening a reviewer would look for, and has
// kube-apiserver validate every object with a server-side dry run.
func TestKustomizeDeployRendersAndApplies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rendered, stderr, err := env.cp.Kubectl(ctx, "kustomize", deployDir(t))
	if err != nil {
		t.Fatalf("kubectl kustomize artifacts/deploy: %v: %s", err, stderr)
	}
	docs, kinds := splitManifests(t, []byte(rendered))
	wantKinds := []string{"APIService", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "Deployment", "Namespace",
		"NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding", "RoleBinding", "Service", "ServiceAccount"}
	sorted := slices.Sorted(slices.Values(kinds))
	if !slices.Equal(sorted, wantKinds) {
		t.Errorf("rendered kinds = %v, want %v", sorted, wantKinds)
	}
	for i, doc := range docs {
		switch kinds[i] {
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(doc, &d); err != nil {
				t.Fatal(err)
			}
			checkDeployment(t, &d)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			if err := yaml.UnmarshalStrict(doc, &p); err != nil {
				t.Fatal(err)
			}
			if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 1 {
				t.Errorf("PodDisruptionBudget minAvailable = %v, want 1", p.Spec.MinAvailable)
			}
		case "NetworkPolicy":
			var n networkingv1.NetworkPolicy
			if err := yaml.UnmarshalStrict(doc, &n); err != nil {
				t.Fatal(err)
			}
			if ports := ingressPorts(&n); !slices.Equal(ports, []int{6443, 9402}) {
				t.Errorf("NetworkPolicy admits ports %v, want [6443 9402]", ports)
			}
		case "APIService":
			if bytes.Contains(doc, []byte("insecureSkipTLSVerify")) {
				t.Error("the APIService must not skip TLS verification")
			}
		}
	}

	// kube-apiserver validates everything without persisting it. The shared
	// signet's own Service and APIService live under the real names, and a
	// merge with them would not be what a fresh cluster sees: move the
	// namespaced objects into a namespace of their own (which a dry run can't
	// create, so it is created for real).
	const ns = "signet-kustomize"
	createNamespace(t, ns)
	moved := strings.ReplaceAll(rendered, framework.SignetNamespace, ns)
	if _, stderr, err := env.cp.KubectlWithInput(ctx, "", strings.NewReader(moved), "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v: %s", err, stderr)
	}

	// The optional CRD kustomization renders the CRDs the tests install.
	crds, stderr, err := env.cp.Kubectl(ctx, "kustomize", "--load-restrictor=LoadRestrictionsNone", filepath.Join(deployDir(t), "crds"))
	if err != nil {
		t.Fatalf("kubectl kustomize artifacts/deploy/crds: %v: %s", err, stderr)
	}
	if _, kinds := splitManifests(t, []byte(crds)); !slices.Equal(kinds, []string{"CustomResourceDefinition", "CustomResourceDefinition"}) {
		t.Errorf("artifacts/deploy/crds renders %v, want two CRDs", kinds)
	}
	if _, stderr, err := env.cp.KubectlWithInput(ctx, "", strings.NewReader(crds), "apply", "--server-side", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply --dry-run=server (CRDs): %v: %s", err, stderr)
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "signet" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext = %+v, want read-only root, no privilege escalation, drop ALL", sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resource requests = %v, want cpu and memory", c.Resources.Requests)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.HTTPGet.Port.String() != "https" {
			t.Errorf("%s probe = %+v, want HTTPS on the https port", name, p)
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Errorf("liveness path = %s, want /livez", c.LivenessProbe.HTTPGet.Path)
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness path = %s, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}
	var ports []int32
	for _, p := range c.Ports {
		ports = append(ports, p.ContainerPort)
	}
	if !slices.Equal(ports, []int32{6443, 9402}) {
		t.Errorf("container ports = %v, want [6443 9402]", ports)
	}
	podNamespace := false
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			podNamespace = true
		}
	}
	if !podNamespace {
		t.Error("POD_NAMESPACE must come from the downward API")
	}

	// The projected token, CA and namespace, where rest.InClusterConfig looks.
	const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == tokenDir && m.ReadOnly {
			volume = m.Name
		}
	}
	var sources []string
	for _, v := range pod.Volumes {
		if v.Name != volume || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			switch {
			case s.ServiceAccountToken != nil:
				sources = append(sources, s.ServiceAccountToken.Path)
			case s.ConfigMap != nil:
				for _, it := range s.ConfigMap.Items {
					sources = append(sources, it.Path)
				}
			case s.DownwardAPI != nil:
				for _, it := range s.DownwardAPI.Items {
					sources = append(sources, it.Path)
				}
			}
		}
	}
	slices.Sort(sources)
	if !slices.Equal(sources, []string{"ca.crt", "namespace", "token"}) {
		t.Errorf("projected volume at %s has %v, want ca.crt, namespace and token", tokenDir, sources)
	}
}
