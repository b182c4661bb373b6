package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/internal/testpki"
	"github.com/signet-dev/signet/pkg/apis/certmanager/v1alpha1"
	"github.com/signet-dev/signet/test/framework"
	"k8s.io/client-go/kubernetes/scheme"
)

// rows parses kubectl's table output into whitespace-split rows keyed by
// their first n columns joined with "/".
func rows(out string, n int) map[string][]string {
	m := map[string][]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < n {
			continue
		}
		m[strings.Join(f[:n], "/")] = f
	}
	return m
}

func TestKubectlGetSignersShowsTypeAndReadiness(t *testing.T) {
	createNamespace(t, "get-a")
	createNamespace(t, "get-b")
	ca := newCA(t, testpki.CAOptions{CommonName: "get-a CA"})
	other := newCA(t, testpki.CAOptions{})
	putCASecret(t, "get-a", "ca", ca.CertPEM(), ca.KeyPEM())
	putCASecret(t, "get-a", "mismatch", ca.CertPEM(), other.KeyPEM())
	createIssuer(t, "get-a", "ca", nil, caSpec("ca"))
	createIssuer(t, "get-a", "missing", nil, caSpec("does-not-exist"))
	createIssuer(t, "get-a", "mismatch", nil, caSpec("mismatch"))
	createIssuer(t, "get-b", "vault", nil, map[string]interface{}{"vault": map[string]interface{}{"server": "https://vault"}})
	createIssuer(t, "", "get-selfsigned", nil, map[string]interface{}{"selfSigned": map[string]interface{}{}})

	want := map[string][2]string{ // namespace/name: TYPE, READY
		"get-a/ca":       {"CA", "True"},
		"get-a/missing":  {"CA", "False"},
		"get-a/mismatch": {"CA", "False"},
		"get-b/vault":    {"Vault", "False"},
	}
	var got map[string][]string
	eventually(t, "kubectl get signers -A to list every issuer", func() (bool, error) {
		got = rows(kubectl(t, "get", "signers", "-A"), 2)
		for k, w := range want {
			r, ok := got[k]
			if !ok || r[2] != w[0] || r[3] != w[1] {
				return false, nil
			}
		}
		return true, nil
	})
	out := kubectl(t, "get", "signers", "-A")
	if header := strings.Fields(strings.SplitN(out, "\n", 2)[0]); strings.Join(header, " ") != "NAMESPACE NAME TYPE READY SIGNER NAME CA EXPIRES AGE" {
		t.Errorf("header = %v", header)
	}
	if r := got["get-a/ca"]; r[4] != "issuers.cert-manager.io/get-a.ca" || r[5] == "<none>" {
		t.Errorf("get-a/ca row = %v, want its signer name and CA expiry", r)
	}
	cs := rows(kubectl(t, "get", "clustersigners"), 1)
	if r, ok := cs["get-selfsigned"]; !ok || r[1] != "SelfSigned" || r[2] != "True" || r[3] != "clusterissuers.cert-manager.io/get-selfsigned" {
		t.Errorf("clustersigners row = %v", r)
	}

	// -o yaml carries spec, the Ready condition and the CA's details.
	var s v1alpha1.Signer
	if err := yaml.Unmarshal([]byte(kubectl(t, "get", "signer", "ca", "-n", "get-a", "-o", "yaml")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Kind != "Signer" || s.APIVersion != "cert-manager.io/v1alpha1" || s.Spec.IssuerRef.Kind != "Issuer" || s.Spec.Type != v1alpha1.SignerTypeCA {
		t.Errorf("signer = %+v", s)
	}
	if s.Status.CA == nil || s.Status.CA.Subject != "CN=get-a CA,O=signet tests" || s.Status.CA.KeyAlgorithm != "ECDSA P-256" ||
		!s.Status.CA.NotAfter.Time.Equal(ca.Cert.NotAfter) || len(s.Status.CA.FingerprintSHA256) != 95 {
		t.Errorf("status.ca = %+v", s.Status.CA)
	}

	// Not-ready signers say which problem they have.
	for name, wantMsg := range map[string]string{
		"missing":  "CA Secret get-a/does-not-exist not found",
		"mismatch": "does not match the public key of the certificate",
	} {
		sig, err := env.signer.CertManagerV1alpha1().Signers("get-a").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := sig.Status.Conditions[0]
		if c.Type != "Ready" || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, wantMsg) {
			t.Errorf("%s: Ready condition = %+v, want message containing %q", name, c, wantMsg)
		}
	}
}

func TestLabelSelectors(t *testing.T) {
	createNamespace(t, "labels")
	createIssuer(t, "labels", "prod", map[string]string{"tier": "prod"}, map[string]interface{}{"selfSigned": map[string]interface{}{}})
	createIssuer(t, "labels", "dev", map[string]string{"tier": "dev"}, map[string]interface{}{"selfSigned": map[string]interface{}{}})
	eventually(t, "both signers", func() (bool, error) {
		return len(rows(kubectl(t, "get", "signers", "-n", "labels"), 1)) == 2, nil
	})
	got := rows(kubectl(t, "get", "signers", "-n", "labels", "-l", "tier=prod"), 1)
	if _, ok := got["prod"]; !ok || len(got) != 1 {
		t.Errorf("-l tier=prod listed %v", got)
	}
	got = rows(kubectl(t, "get", "signers", "-n", "labels", "--field-selector", "metadata.name=dev"), 1)
	if _, ok := got["dev"]; !ok || len(got) != 1 {
		t.Errorf("--field-selector metadata.name=dev listed %v", got)
	}
}

func TestAPIResourcesListReferenceVerb(t *testing.T) {
	out := kubectl(t, "api-resources", "--api-group=cert-manager.io", "-o", "wide")
	got := rows(out, 1)
	for _, res := range []string{"signers", "clustersigners"} {
		r, ok := got[res]
		if !ok {
			t.Fatalf("api-resources has no %s:\n%s", res, out)
		}
		// -o wide ends each row with the verbs, comma-separated, and the categories.
		if verbs, categories := r[len(r)-2], r[len(r)-1]; verbs != "get,list,watch,reference" || categories != "cert-manager" {
			t.Errorf("%s verbs = %q, categories %q in row %q, want get,list,watch,reference and cert-manager", res, verbs, categories, strings.Join(r, " "))
		}
	}
	// The Issuer CRDs share the group and are still listed.
	if _, ok := got["issuers"]; !ok {
		t.Errorf("api-resources lost issuers:\n%s", out)
	}
}

// TestDiscoveryDocumentsListReferenceVerb reads both discovery documents
// through kube-apiserver: the legacy group-version list (proxied to signet)
// and aggregated discovery (merged by kube-apiserver from signet's /apis).
func TestDiscoveryDocumentsListReferenceVerb(t *testing.T) {
	ctx := context.Background()
	want := []string{"get", "list", "watch", "reference"}

	var legacy metav1.APIResourceList
	raw, err := env.kube.Discovery().RESTClient().Get().AbsPath("/apis/cert-manager.io/v1alpha1").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &legacy); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range legacy.APIResources {
		if r.Name == "signers" || r.Name == "clustersigners" {
			found++
			if !sets.New(r.Verbs...).Equal(sets.New(want...)) {
				t.Errorf("legacy discovery: %s verbs = %v, want %v", r.Name, r.Verbs, want)
			}
			if (r.Name == "signers") != r.Namespaced {
				t.Errorf("legacy discovery: %s namespaced = %v", r.Name, r.Namespaced)
			}
			if !slices.Equal(r.Categories, []string{"cert-manager"}) {
				t.Errorf("legacy discovery: %s categories = %v, want [cert-manager]", r.Name, r.Categories)
			}
		}
	}
	if found != 2 {
		t.Errorf("legacy discovery lists %d of signers/clustersigners: %+v", found, legacy.APIResources)
	}

	raw, err = env.kube.Discovery().RESTClient().Get().AbsPath("/apis").
		SetHeader("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(raw, &agg); err != nil {
		t.Fatal(err)
	}
	found = 0
	for _, g := range agg.Items {
		if g.Name != "cert-manager.io" {
			continue
		}
		if len(g.Versions) == 0 || g.Versions[0].Version != "v1" {
			t.Errorf("aggregated discovery: cert-manager.io versions %v; want v1 first (preferred)", g.Versions)
		}
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				if v.Version == "v1alpha1" && (r.Resource == "signers" || r.Resource == "clustersigners") {
					found++
					if !sets.New(r.Verbs...).Equal(sets.New(want...)) {
						t.Errorf("aggregated discovery: %s verbs = %v, want %v", r.Resource, r.Verbs, want)
					}
					if !slices.Equal(r.Categories, []string{"cert-manager"}) {
						t.Errorf("aggregated discovery: %s categories = %v, want [cert-manager]", r.Resource, r.Categories)
					}
				}
			}
		}
	}
	if found != 2 {
		t.Errorf("aggregated discovery lists %d of signers/clustersigners", found)
	}
}

func TestIssuersKeepWorkingAndV1StaysPreferred(t *testing.T) {
	createNamespace(t, "coexist")
	createIssuer(t, "coexist", "selfsigned", nil, map[string]interface{}{"selfSigned": map[string]interface{}{}})
	if got := rows(kubectl(t, "get", "issuers", "-n", "coexist"), 1); len(got) != 1 {
		t.Errorf("kubectl get issuers -n coexist = %v", got)
	}
	var group metav1.APIGroup
	if err := json.Unmarshal([]byte(kubectl(t, "get", "--raw", "/apis/cert-manager.io")), &group); err != nil {
		t.Fatal(err)
	}
	if group.PreferredVersion.Version != "v1" {
		t.Errorf("preferred version of cert-manager.io = %q, want v1", group.PreferredVersion.Version)
	}
	versions := sets.New[string]()
	for _, v := range group.Versions {
		versions.Insert(v.Version)
	}
	if !versions.HasAll("v1", "v1alpha1") {
		t.Errorf("cert-manager.io versions = %v", sets.List(versions))
	}
}

func TestReferenceRoleAndCanI(t *testing.T) {
	createNamespace(t, "sandbox")
	kubectl(t, "create", "role", "r", "-n", "sandbox", "--verb=reference", "--resource=signers.cert-manager.io", "--resource-name=my-issuer")
	kubectl(t, "create", "rolebinding", "r", "-n", "sandbox", "--role=r", "--user=alice")
	canI := func(user, name string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, _, _ := env.cp.Kubectl(ctx, "auth", "can-i", "reference", "signers.cert-manager.io/"+name, "-n", "sandbox", "--as="+user)
		return strings.TrimSpace(out)
	}
	eventually(t, "RBAC to allow alice", func() (bool, error) { return canI("alice", "my-issuer") == "yes", nil })
	if got := canI("bob", "my-issuer"); got != "no" {
		t.Errorf("can-i for bob = %q, want no", got)
	}
	if got := canI("alice", "other-issuer"); got != "no" {
		t.Errorf("can-i for alice on another issuer = %q, want no", got)
	}
}

func TestExplainSignersSpec(t *testing.T) {
	out := kubectl(t, "explain", "signers.spec")
	for _, want := range []string{"KIND:", "Signer", "signerName", "issuerRef", "type"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain signers.spec lacks %q:\n%s", want, out)
		}
	}
	out = kubectl(t, "explain", "clustersigners.status.ca")
	if !strings.Contains(out, "fingerprintSHA256") || !strings.Contains(out, "notAfter") {
		t.Errorf("kubectl explain clustersigners.status.ca:\n%s", out)
	}
	// OpenAPI v2, which older clients and kube-apiserver's aggregation read.
	if raw := kubectl(t, "get", "--raw", "/openapi/v2"); !strings.Contains(raw, "com.github.signet-dev.signet.pkg.apis.certmanager.v1alpha1.Signer") {
		t.Error("/openapi/v2 of kube-apiserver has no Signer definition")
	}
}

func TestWatchSeesCARotation(t *testing.T) {
	createNamespace(t, "rotate")
	first := newCA(t, testpki.CAOptions{CommonName: "first"})
	putCASecret(t, "rotate", "ca", first.CertPEM(), first.KeyPEM())
	createIssuer(t, "rotate", "ca", nil, caSpec("ca"))
	eventually(t, "signer ready", func() (bool, error) {
		s, err := env.signer.CertManagerV1alpha1().Signers("rotate").Get(context.Background(), "ca", metav1.GetOptions{})
		return err == nil && s.Status.CA != nil && s.Status.CA.Subject == "CN=first,O=signet tests", nil
	})

	kubectlBin, err := framework.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, "--kubeconfig", env.cp.KubeconfigPath, "get", "signers", "-n", "rotate", "-w",
		"-o", "custom-columns=NAME:.metadata.name,CA:.status.ca.subject", "--no-headers")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl get -w ended before printing %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("kubectl get -w printed no line with %q within %s", want, within)
			}
		}
	}
	expect("CN=first", 20*time.Second)

	second := newCA(t, testpki.CAOptions{CommonName: "second"})
	rotated := time.Now()
	putCASecret(t, "rotate", "ca", second.CertPEM(), second.KeyPEM())
	expect("CN=second", 10*time.Second)
	t.Logf("kubectl get -w printed the rotated CA %s after the Secret update", time.Since(rotated).Round(time.Millisecond))
}

// TestAuthentication: anonymous requests get 401 (from kube-apiserver, and
// from signet itself when reached directly); an authenticated user without
// RBAC gets 403; health endpoints answer probes without credentials.
func TestAuthentication(t *testing.T) {
	ctx := context.Background()
	status := func(cfg *rest.Config, path string) int {
		t.Helper()
		c, err := rest.UnversionedRESTClientFor(withCodec(cfg))
		if err != nil {
			t.Fatal(err)
		}
		var code int
		c.Get().AbsPath(path).Do(ctx).StatusCode(&code)
		return code
	}
	anonymous := rest.AnonymousClientConfig(env.cp.AdminConfig)
	if got := status(anonymous, "/apis/cert-manager.io/v1alpha1/signers"); got != http.StatusUnauthorized {
		t.Errorf("anonymous via kube-apiserver: %d, want 401", got)
	}
	if got := status(env.cp.UserConfig("mallory"), "/apis/cert-manager.io/v1alpha1/signers"); got != http.StatusForbidden {
		t.Errorf("user without RBAC via kube-apiserver: %d, want 403", got)
	}
	if got := status(env.cp.AdminConfig, "/apis/cert-manager.io/v1alpha1/signers"); got != http.StatusOK {
		t.Errorf("admin via kube-apiserver: %d, want 200", got)
	}

	direct := &rest.Config{Host: env.signet.URL, TLSClientConfig: rest.TLSClientConfig{CAData: env.signet.CAPEM}}
	if got := status(direct, "/apis/cert-manager.io/v1alpha1/signers"); got != http.StatusUnauthorized {
		t.Errorf("anonymous directly to signet: %d, want 401", got)
	}
	bogus := rest.CopyConfig(direct)
	bogus.BearerToken = "not-a-token"
	if got := status(bogus, "/apis/cert-manager.io/v1alpha1/signers"); got != http.StatusUnauthorized {
		t.Errorf("bad token directly to signet: %d, want 401", got)
	}
	for _, p := range []string{"/readyz", "/livez", "/healthz"} {
		if got := status(direct, p); got != http.StatusOK {
			t.Errorf("anonymous %s on signet: %d, want 200", p, got)
		}
	}

	// The metrics endpoint on plain HTTP serves metrics and nothing else.
	resp, err := http.Get(env.signet.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE") {
		t.Errorf("metrics endpoint: %d, %d bytes", resp.StatusCode, len(body))
	}
	other := strings.TrimSuffix(env.signet.MetricsURL, "/metrics") + "/apis"
	if resp, err := http.Get(other); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("plain-HTTP %s: %d, want 404", other, resp.StatusCode)
		}
	}
}

func withCodec(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &v1alpha1.SchemeGroupVersion
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return c
}

// TestLivezChecks: /livez includes leaderElection and clockHealth.
func TestLivezChecks(t *testing.T) {
	direct := &rest.Config{Host: env.signet.URL, TLSClientConfig: rest.TLSClientConfig{CAData: env.signet.CAPEM}}
	c, err := rest.UnversionedRESTClientFor(withCodec(direct))
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Get().AbsPath("/livez").Param("verbose", "true").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("/livez: %v\n%s", err, body)
	}
	for _, want := range []string{"[+]leaderElection ok", "[+]clockHealth ok"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/livez?verbose lacks %q:\n%s", want, body)
		}
	}
}
