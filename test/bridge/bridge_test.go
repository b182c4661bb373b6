package bridge

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/pkg/issuance/certificaterequest"
	"github.com/signet-dev/signet/test/framework"
	"github.com/signet-dev/signet/test/framework/fakecertmanager"
)

// allowReference lets group signet:requesters create CSRs, and user
// reference the signer objectName in namespace ns (nothing if objectName is empty).
func allowReference(t *testing.T, user, ns, objectName string) {
	t.Helper()
	ctx := context.Background()
	rbac := env.kube.RbacV1()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bridge-csr-requester"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get"}}}}
	if _, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bridge-csr-requester"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "signet:requesters"}}}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if objectName == "" {
		return
	}
	name := "reference-" + user
	ref := rbacv1.PolicyRule{APIGroups: []string{"cert-manager.io"}, Resources: []string{"signers"}, ResourceNames: []string{objectName}, Verbs: []string{"reference"}}
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{ref}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitSignerReady waits until the signer (namespace empty: clustersigner)
// is listed Ready, with type typ.
func waitSignerReady(t *testing.T, ns, name string, typ v1alpha1.SignerType) v1alpha1.SignerSpec {
	t.Helper()
	var spec v1alpha1.SignerSpec
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var conds []metav1.Condition
		if ns == "" {
			s, err := env.signer.CertManagerV1alpha1().ClusterSigners().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			spec, conds = s.Spec, s.Status.Conditions
		} else {
			s, err := env.signer.CertManagerV1alpha1().Signers(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			spec, conds = s.Spec, s.Status.Conditions
		}
		last = fmt.Sprintf("%+v", conds)
		return spec.Type == typ && meta.IsStatusConditionTrue(conds, v1alpha1.SignerConditionReady), nil
	})
	if err != nil {
		t.Fatalf("signer %s/%s never Ready with type %s: %s", ns, name, typ, last)
	}
	return spec
}

// A Vault Issuer signs through cert-manager: the signer is Ready because
// cert-manager says its Issuer is; the approved CSR becomes one
// CertificateRequest, owned by the CSR and approved by signet naming the CSR;
// cert-manager's certificate (leaf + chain) lands in the CSR; while it waits
// there is one event saying for what.
func TestVaultIssuerSignsThroughACertificateRequest(t *testing.T) {
	createNamespace(t, "vault")
	createReadyIssuer(t, cmIssuer, "vault", "vault", vaultSpec(), map[string]string{fakecertmanager.AnnotationSignDelay: "1s"})
	spec := waitSignerReady(t, "vault", "vault", v1alpha1.SignerTypeVault)
	if spec.SignerName != "issuers.cert-manager.io/vault.vault" {
		t.Errorf("signer name %q", spec.SignerName)
	}
	allowReference(t, "vault-alice", "vault", "vault")
	name, key := createCSR(t, spec.SignerName, "vault-alice")
	approve(t, name)
	csr := mustIssue(t, name)
	chain := chainOf(t, csr.Status.Certificate, key)
	if got := chain[0].NotAfter.Sub(chain[0].NotBefore); got != 24*time.Hour {
		t.Errorf("validity %s, want the requested 24h (spec.duration)", got)
	}

	cr := certificateRequestOf(t, name)
	if cr == nil {
		t.Fatal("no CertificateRequest for the CSR")
	}
	if cr.GetNamespace() != "vault" {
		t.Errorf("CertificateRequest in namespace %q, want the Issuer's", cr.GetNamespace())
	}
	owners := cr.GetOwnerReferences()
	if len(owners) != 1 || owners[0].Kind != "CertificateSigningRequest" || owners[0].Name != name || owners[0].UID != csr.UID {
		t.Errorf("ownerReferences %+v, want the CSR", owners)
	}
	approved := condition(cr, "Approved")
	if approved == nil || approved["status"] != "True" || approved["reason"] != certificaterequest.ReasonApproved ||
		!strings.Contains(approved["message"].(string), "CertificateSigningRequest "+name) || !strings.Contains(approved["message"].(string), "BridgeTest") {
		t.Errorf("Approved condition %v, want signet's naming the CSR and its approval", approved)
	}
	ref, _, _ := unstructured.NestedMap(cr.Object, "spec", "issuerRef")
	if ref["name"] != "vault" || ref["kind"] != "Issuer" || ref["group"] != "cert-manager.io" {
		t.Errorf("issuerRef %v", ref)
	}
	if d, _, _ := unstructured.NestedString(cr.Object, "spec", "duration"); d != "24h0m0s" {
		t.Errorf("spec.duration %q", d)
	}
	if n := env.fake.Issued(cr.GetNamespace(), cr.GetName()); n != 1 {
		t.Errorf("cert-manager signed the CertificateRequest %d times", n)
	}
	var pending []string
	for _, e := range events(t, name) {
		if e.Reason == "CertificateRequestPending" {
			pending = append(pending, fmt.Sprintf("%s (x%d)", e.Message, e.Count))
		}
	}
	if len(pending) != 1 || !strings.Contains(pending[0], "Waiting for Vault Issuer vault/vault to sign CertificateRequest vault/"+cr.GetName()+" (x1)") {
		t.Errorf("CertificateRequestPending events %q, want one naming the issuer and the CertificateRequest", pending)
	}
}

// An ACME ClusterIssuer: the CertificateRequest goes to
// --certificate-request-namespace.
func TestACMEClusterIssuerSignsThroughACertificateRequest(t *testing.T) {
	createReadyIssuer(t, cmClusterIssuer, "", "letsencrypt", acmeSpec(), nil)
	spec := waitSignerReady(t, "", "letsencrypt", v1alpha1.SignerTypeACME)
	name, key := createCSR(t, spec.SignerName, "")
	approve(t, name)
	chainOf(t, mustIssue(t, name).Status.Certificate, key)
	cr := certificateRequestOf(t, name)
	if cr == nil || cr.GetNamespace() != framework.SignetNamespace {
		t.Fatalf("CertificateRequest %v, want one in %s", cr, framework.SignetNamespace)
	}
	if ref, _, _ := unstructured.NestedMap(cr.Object, "spec", "issuerRef"); ref["kind"] != "ClusterIssuer" || ref["name"] != "letsencrypt" {
		t.Errorf("issuerRef %v", ref)
	}
}

// External issuers are served as signers (type External, named
// <resource>.<group>.<name>), referenced by that name, and sign through
// CertificateRequests whose issuerRef is theirs.
func TestExternalIssuerSignsThroughACertificateRequest(t *testing.T) {
	createNamespace(t, "ext")
	createReadyIssuer(t, testIssuer, "ext", "step", map[string]interface{}{"url": "https://ca.example.com"}, nil)
	spec := waitSignerReady(t, "ext", "testissuers.example.com.step", v1alpha1.SignerTypeExternal)
	if spec.SignerName != "testissuers.example.com/ext.step" || spec.IssuerRef.Group != "example.com" || spec.IssuerRef.Kind != "TestIssuer" || spec.IssuerRef.Name != "step" {
		t.Errorf("signer spec %+v", spec)
	}
	out, _, err := env.cp.Kubectl(context.Background(), "get", "signers", "-n", "ext")
	if err != nil || !strings.Contains(out, "testissuers.example.com.step   External   True    testissuers.example.com/ext.step") {
		t.Errorf("kubectl get signers -n ext (%v):\n%s", err, out)
	}

	allowReference(t, "ext-alice", "ext", "testissuers.example.com.step")
	name, key := createCSR(t, spec.SignerName, "ext-alice")
	approve(t, name)
	chainOf(t, mustIssue(t, name).Status.Certificate, key)
	cr := certificateRequestOf(t, name)
	if ref, _, _ := unstructured.NestedMap(cr.Object, "spec", "issuerRef"); ref["kind"] != "TestIssuer" || ref["group"] != "example.com" || ref["name"] != "step" {
		t.Errorf("issuerRef %v, want the TestIssuer", ref)
	}

	// Allowed to reference an Issuer of the same name is not allowed to
	// reference the external issuer.
	allowReference(t, "ext-bob", "ext", "step")
	name, _ = createCSR(t, spec.SignerName, "ext-bob")
	approve(t, name)
	mustFail(t, name, "DeniedReference")

	// A cluster-scoped external issuer is a clustersigner.
	createReadyIssuer(t, testClusterIssuer, "", "cluster-step", map[string]interface{}{}, nil)
	cspec := waitSignerReady(t, "", "testclusterissuers.example.com.cluster-step", v1alpha1.SignerTypeExternal)
	name, key = createCSR(t, cspec.SignerName, "")
	approve(t, name)
	chainOf(t, mustIssue(t, name).Status.Certificate, key)
	if cr := certificateRequestOf(t, name); cr.GetNamespace() != framework.SignetNamespace {
		t.Errorf("cluster-scoped external issuer's CertificateRequest in %s", cr.GetNamespace())
	}
}

// Each answer of cert-manager's, and the CSR it gives.
func TestCertificateRequestOutcomes(t *testing.T) {
	createNamespace(t, "outcomes")
	for _, o := range []string{fakecertmanager.OutcomeFail, fakecertmanager.OutcomeInvalid, fakecertmanager.OutcomePending} {
		createReadyIssuer(t, cmIssuer, "outcomes", o, vaultSpec(), outcome(o))
	}
	t.Run("Failed", func(t *testing.T) {
		name, _ := createCSR(t, "issuers.cert-manager.io/outcomes.fail", "")
		approve(t, name)
		f := mustFail(t, name, "Failed")
		if !strings.Contains(f.Message, fakecertmanager.MessageFailed) || !strings.Contains(f.Message, "CertificateRequest outcomes/") {
			t.Errorf("message %q, want cert-manager's, naming the CertificateRequest", f.Message)
		}
	})
	t.Run("InvalidRequest", func(t *testing.T) {
		name, _ := createCSR(t, "issuers.cert-manager.io/outcomes.invalid", "")
		approve(t, name)
		if f := mustFail(t, name, "InvalidRequest"); !strings.Contains(f.Message, fakecertmanager.MessageInvalid) {
			t.Errorf("message %q", f.Message)
		}
	})
	t.Run("PendingWaitsWithOneEvent", func(t *testing.T) {
		name, _ := createCSR(t, "issuers.cert-manager.io/outcomes.pending", "")
		approve(t, name)
		var cr *unstructured.Unstructured
		eventually(t, "cert-manager to mark the CertificateRequest Pending", func() bool {
			if cr = certificateRequestOf(t, name); cr == nil {
				return false
			}
			c := condition(cr, "Ready")
			return c != nil && c["reason"] == "Pending"
		})
		time.Sleep(2 * time.Second) // time for any further event
		csr := waitCSR(t, name, time.Second, "still waiting", func(c *certificatesv1.CertificateSigningRequest) bool { return true })
		if issued(csr) || failedCondition(csr) != nil {
			t.Fatalf("a pending CertificateRequest ended the CSR: %+v", csr.Status.Conditions)
		}
		evs := events(t, name)
		if len(evs) != 1 || evs[0].Reason != "CertificateRequestPending" || evs[0].Count != 1 {
			t.Errorf("events:\n%s\nwant one CertificateRequestPending, once", eventsFor(t, name))
		}
		// kubectl signet describe lists the CSR with what it waits for.
		framework.RequireBinaries(t, "kubectl-signet")
		plugin, err := framework.Binary("kubectl-signet")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(plugin, "--kubeconfig="+env.cp.KubeconfigPath, "describe", "signer", "pending", "-n", "outcomes").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl signet describe: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), name) || !strings.Contains(string(out), "CertificateRequestPending") ||
			!strings.Contains(string(out), "CertificateRequest outcomes/"+cr.GetName()) {
			t.Errorf("kubectl signet describe signer pending does not show the CSR waiting for its CertificateRequest:\n%s", out)
		}
	})
}

// With --certificate-request-approval=external signet leaves the
// CertificateRequest for another approver: denied there, the CSR fails
// Denied; approved there, it is issued.
func TestExternalApproval(t *testing.T) {
	createNamespace(t, "approver")
	createReadyIssuer(t, cmIssuer, "approver", "vault", vaultSpec(), nil)
	withSignet(t, []string{"--certificate-request-approval=external"}, func() {
		denied, _ := createCSR(t, "issuers.cert-manager.io/approver.vault", "")
		allowed, key := createCSR(t, "issuers.cert-manager.io/approver.vault", "")
		approve(t, denied)
		approve(t, allowed)
		var crDenied, crAllowed *unstructured.Unstructured
		eventually(t, "both CertificateRequests", func() bool {
			crDenied, crAllowed = certificateRequestOf(t, denied), certificateRequestOf(t, allowed)
			return crDenied != nil && crAllowed != nil
		})
		time.Sleep(time.Second)
		if c := condition(certificateRequestOf(t, allowed), "Approved"); c != nil {
			t.Fatalf("signet approved with --certificate-request-approval=external: %v", c)
		}
		eventually(t, "the event saying the CSR waits for approval", func() bool {
			return strings.Contains(eventsFor(t, allowed), "to be approved")
		})
		// The approver decides.
		setCRCondition(t, crDenied, "Denied", "policy.cert-manager.io", "No policy approved this request")
		setCRCondition(t, crAllowed, "Approved", "policy.cert-manager.io", "Approved by CertificateRequestPolicy")
		if f := mustFail(t, denied, "Denied"); !strings.Contains(f.Message, "No policy approved this request") {
			t.Errorf("Denied message %q, want the approver's", f.Message)
		}
		chainOf(t, mustIssue(t, allowed).Status.Certificate, key)
	})
}

func setCRCondition(t *testing.T, cr *unstructured.Unstructured, typ, reason, message string) {
	t.Helper()
	client := env.dyn.Resource(certificaterequest.GVR).Namespace(cr.GetNamespace())
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		cur, err := client.Get(ctx, cr.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		conds = append(conds, map[string]interface{}{"type": typ, "status": "True", "reason": reason, "message": message,
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339)})
		_ = unstructured.SetNestedSlice(cur.Object, conds, "status", "conditions")
		_, err = client.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A requester who may not reference the signer gets DeniedReference, and
// nothing is asked of cert-manager.
func TestNoCertificateRequestWithoutReference(t *testing.T) {
	createNamespace(t, "noref")
	createReadyIssuer(t, cmIssuer, "noref", "vault", vaultSpec(), nil)
	waitSignerReady(t, "noref", "vault", v1alpha1.SignerTypeVault)
	allowReference(t, "noref-mallory", "", "")
	name, _ := createCSR(t, "issuers.cert-manager.io/noref.vault", "noref-mallory")
	approve(t, name)
	mustFail(t, name, "DeniedReference")
	if cr := certificateRequestOf(t, name); cr != nil {
		t.Errorf("CertificateRequest %s/%s made for a CSR that failed the reference check", cr.GetNamespace(), cr.GetName())
	}
	list, err := env.dyn.Resource(certificaterequest.GVR).Namespace("noref").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("%d CertificateRequests in noref (%v), want none", len(list.Items), err)
	}
}

// A CSR deleted while cert-manager works on it leaves no CertificateRequest.
func TestDeletedCSRLeavesNoCertificateRequest(t *testing.T) {
	createNamespace(t, "deleted")
	createReadyIssuer(t, cmIssuer, "deleted", "pending", vaultSpec(), outcome(fakecertmanager.OutcomePending))
	name, _ := createCSR(t, "issuers.cert-manager.io/deleted.pending", "")
	approve(t, name)
	var cr *unstructured.Unstructured
	eventually(t, "the CertificateRequest", func() bool { cr = certificateRequestOf(t, name); return cr != nil })
	if err := env.kube.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the CertificateRequest to go with its CSR", func() bool {
		_, err := env.dyn.Resource(certificaterequest.GVR).Namespace(cr.GetNamespace()).Get(context.Background(), cr.GetName(), metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}
