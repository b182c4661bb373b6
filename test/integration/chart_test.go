package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/test/framework"
)

// The chart is rendered as release "signet", so that its objects carry the
// kustomize base's names and the two can be compared object by object.
const chartRelease = "signet"

// chartDir is artifacts/charts/signet.
func chartDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(filepath.Dir(deployDir(t)), "charts", "signet")
}

// runHelm runs the built helm with its cache, config and data in a temporary
// directory, and returns stdout and the error, which quotes stderr.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	framework.RequireBinaries(t, "helm")
	bin, err := framework.Binary("helm")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// chart is one rendering of the chart, its documents keyed "Kind/name".
type chart struct {
	text  string
	kinds []string
	docs  map[string][]byte
}

// renderChart runs `helm template` in namespace ns with the given extra
// arguments (-f, --set).
func renderChart(t *testing.T, ns string, args ...string) *chart {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", chartRelease, chartDir(t), "--namespace", ns}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := &chart{text: out, docs: map[string][]byte{}}
	docs, kinds := splitManifests(t, []byte(out))
	for i, doc := range docs {
		var m metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		key := kinds[i] + "/" + m.Name
		if _, dup := c.docs[key]; dup {
			t.Fatalf("the chart renders %s twice", key)
		}
		c.docs[key] = doc
	}
	c.kinds = slices.Sorted(slices.Values(kinds))
	return c
}

// object decodes the rendered kind/name strictly into obj.
func (c *chart) object(t *testing.T, kind, name string, obj interface{}) {
	t.Helper()
	doc, ok := c.docs[kind+"/"+name]
	if !ok {
		t.Fatalf("the chart renders no %s %s", kind, name)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

func (c *chart) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	c.object(t, "Deployment", chartRelease, &d)
	return &d
}

// without returns the rendered stream minus the documents of the given kinds.
func (c *chart) without(t *testing.T, kinds ...string) string {
	t.Helper()
	docs, docKinds := splitManifests(t, []byte(c.text))
	var b strings.Builder
	for i, doc := range docs {
		if !slices.Contains(kinds, docKinds[i]) {
			b.WriteString("---\n")
			b.Write(doc)
		}
	}
	return b.String()
}

func bestPracticeValues(t *testing.T) string {
	t.Helper()
	return filepath.Join(chartDir(t), "values.best-practice.yaml")
}

// TestChartLints runs `helm lint --strict` with the default values, the
// best-practice values and the cainjector serving mode.
func TestChartLints(t *testing.T) {
	for name, args := range map[string][]string{
		"Defaults":     nil,
		"BestPractice": {"-f", bestPracticeValues(t)},
		"CAInjector":   {"--set", "servingCerts.mode=cainjector"},
		"CRDs":         {"--set", "crds.enabled=true"},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := runHelm(t, append([]string{"lint", "--strict", "--namespace", framework.SignetNamespace, chartDir(t)}, args...)...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// chartKinds are the kustomize base's kinds minus the Namespace: a chart
// leaves that to `helm install --create-namespace`.
var chartKinds = []string{"APIService", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "Deployment",
	"NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding", "RoleBinding", "Service", "ServiceAccount"}

// TestChartRendersAndApplies renders the chart with each values set a user
// is pointed to, checks what each must guarantee, and has kube-apiserver
// validate the objects with a server-side dry run, in a namespace of their
// own (see TestKustomizeDeployRendersAndApplies for why).
func TestChartRendersAndApplies(t *testing.T) {
	const ns = "signet-helm"
	createNamespace(t, ns)
	dryRun := func(t *testing.T, manifests string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, stderr, err := env.cp.KubectlWithInput(ctx, "", strings.NewReader(manifests), "apply", "--dry-run=server", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply --dry-run=server: %v: %s", err, stderr)
		}
	}

	t.Run("Defaults", func(t *testing.T) {
		c := renderChart(t, ns)
		if !slices.Equal(c.kinds, chartKinds) {
			t.Errorf("rendered kinds = %v, want %v", c.kinds, chartKinds)
		}
		d := c.deployment(t)
		checkDeployment(t, d)
		checkSelfServing(t, c, d)
		dryRun(t, c.text)
	})

	t.Run("BestPractice", func(t *testing.T) {
		c := renderChart(t, ns, "-f", bestPracticeValues(t))
		if !slices.Equal(c.kinds, chartKinds) {
			t.Errorf("rendered kinds = %v, want %v", c.kinds, chartKinds)
		}
		checkDeployment(t, c.deployment(t))
		for _, p := range bestPracticeProblems(t, c) {
			t.Error(p)
		}
		dryRun(t, c.text)
	})

	// The test control plane has signet's Issuer CRD but no Certificate CRD.
	// A stand-in written here would validate the Certificates against our own
	// guess of cert-manager's schema, and would change the cert-manager.io
	// group whose discovery signers_test.go checks for the whole package. So
	// the Certificates are checked field by field, and everything else, the
	// Issuers included, goes through the dry run.
	t.Run("CAInjector", func(t *testing.T) {
		c := renderChart(t, ns, "--set", "servingCerts.mode=cainjector")
		want := slices.Sorted(slices.Values(append(slices.Clone(chartKinds), "Certificate", "Certificate", "Issuer", "Issuer")))
		if !slices.Equal(c.kinds, want) {
			t.Errorf("rendered kinds = %v, want %v", c.kinds, want)
		}
		d := c.deployment(t)
		checkDeployment(t, d)
		checkCAInjectorServing(t, c, d, ns)
		dryRun(t, c.without(t, "Certificate"))
	})

	t.Run("CRDs", func(t *testing.T) {
		c := renderChart(t, ns, "--set", "crds.enabled=true")
		want := slices.Sorted(slices.Values(append(slices.Clone(chartKinds), "CustomResourceDefinition", "CustomResourceDefinition")))
		if !slices.Equal(c.kinds, want) {
			t.Fatalf("rendered kinds = %v, want %v", c.kinds, want)
		}
		for _, name := range []string{"issuers.cert-manager.io", "clusterissuers.cert-manager.io"} {
			var crd struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal(c.docs["CustomResourceDefinition/"+name], &crd); err != nil {
				t.Fatal(err)
			}
			// Uninstalling must not delete every Issuer in the cluster.
			if crd.Metadata.Annotations["helm.sh/resource-policy"] != "keep" {
				t.Errorf("CRD %s annotations = %v, want helm.sh/resource-policy: keep", name, crd.Metadata.Annotations)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		crds := c.without(t, chartKinds...)
		if _, stderr, err := env.cp.KubectlWithInput(ctx, "", strings.NewReader(crds), "apply", "--server-side", "--dry-run=server", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply --server-side --dry-run=server (CRDs): %v: %s", err, stderr)
		}
	})

	t.Run("RejectsValuesThatCannotWork", func(t *testing.T) {
		for _, set := range []string{
			"servingCerts.mode=insecure",
			"servingCerts.mode=cainjector,crds.enabled=true",
			"replicas=1",
		} {
			if _, err := runHelm(t, "template", chartRelease, chartDir(t), "--namespace", ns, "--set", set); err == nil {
				t.Errorf("helm template --set %s succeeded, want an error", set)
			}
		}
	})
}

// checkSelfServing checks servingCerts.mode=self: signet keeps the
// APIService's caBundle, which the chart therefore never sets.
func checkSelfServing(t *testing.T, c *chart, d *appsv1.Deployment) {
	t.Helper()
	args := d.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--ca-bundle-apiservice="+framework.SignetAPIServiceName) {
		t.Errorf("args %v: want --ca-bundle-apiservice=%s", args, framework.SignetAPIServiceName)
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--tls-") }) {
		t.Errorf("args %v: want no --tls-* flags in self mode", args)
	}
	spec := apiServiceSpec(t, c)
	for _, field := range []string{"caBundle", "insecureSkipTLSVerify"} {
		if _, ok := spec[field]; ok {
			t.Errorf("APIService spec has %s; a Helm upgrade would overwrite what signet wrote", field)
		}
	}
}

// checkCAInjectorServing checks servingCerts.mode=cainjector: a self-signed
// Issuer, a CA Certificate, a CA Issuer and the serving Certificate, whose
// Secret signet serves with and whose CA cainjector puts in the APIService.
func checkCAInjectorServing(t *testing.T, c *chart, d *appsv1.Deployment, ns string) {
	t.Helper()
	type issuerRef struct{ Group, Kind, Name string }
	type certificate struct {
		Spec struct {
			IsCA       bool      `json:"isCA"`
			SecretName string    `json:"secretName"`
			DNSNames   []string  `json:"dnsNames"`
			IssuerRef  issuerRef `json:"issuerRef"`
		} `json:"spec"`
	}
	type issuer struct {
		Spec struct {
			SelfSigned *struct{} `json:"selfSigned"`
			CA         *struct {
				SecretName string `json:"secretName"`
			} `json:"ca"`
		} `json:"spec"`
	}
	decode := func(kind, name string, obj interface{}) {
		t.Helper()
		doc, ok := c.docs[kind+"/"+name]
		if !ok {
			t.Fatalf("the chart renders no %s %s; it renders %v", kind, name, c.kinds)
		}
		if err := yaml.Unmarshal(doc, obj); err != nil {
			t.Fatal(err)
		}
	}

	// The chain: selfSigned Issuer → CA Certificate → CA Issuer → serving Certificate.
	var serving, ca certificate
	var caIssuer, root issuer
	decode("Certificate", chartRelease+"-serving", &serving)
	if ref := serving.Spec.IssuerRef; ref.Kind != "Issuer" || ref.Group != "cert-manager.io" {
		t.Fatalf("serving Certificate issuerRef = %+v, want a cert-manager.io Issuer", ref)
	}
	decode("Issuer", serving.Spec.IssuerRef.Name, &caIssuer)
	if caIssuer.Spec.CA == nil {
		t.Fatalf("Issuer %s is not a CA issuer", serving.Spec.IssuerRef.Name)
	}
	caCertName := ""
	for key, doc := range c.docs {
		var cert certificate
		if strings.HasPrefix(key, "Certificate/") && yaml.Unmarshal(doc, &cert) == nil && cert.Spec.SecretName == caIssuer.Spec.CA.SecretName {
			ca, caCertName = cert, strings.TrimPrefix(key, "Certificate/")
		}
	}
	if caCertName == "" || !ca.Spec.IsCA {
		t.Fatalf("no CA Certificate writes the CA Issuer's Secret %s", caIssuer.Spec.CA.SecretName)
	}
	decode("Issuer", ca.Spec.IssuerRef.Name, &root)
	if root.Spec.SelfSigned == nil {
		t.Errorf("the CA Certificate's Issuer %s is not selfSigned", ca.Spec.IssuerRef.Name)
	}
	svc := chartRelease + "." + ns + ".svc"
	if want := []string{svc, svc + ".cluster.local"}; !slices.Equal(serving.Spec.DNSNames, want) {
		t.Errorf("serving Certificate dnsNames = %v, want %v", serving.Spec.DNSNames, want)
	}

	// cainjector fills the APIService from the CA Certificate.
	var apiSvc struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(c.docs["APIService/"+framework.SignetAPIServiceName], &apiSvc); err != nil {
		t.Fatal(err)
	}
	if got, want := apiSvc.Metadata.Annotations["cert-manager.io/inject-ca-from"], ns+"/"+caCertName; got != want {
		t.Errorf("APIService cert-manager.io/inject-ca-from = %q, want %q", got, want)
	}
	spec := apiServiceSpec(t, c)
	for _, field := range []string{"caBundle", "insecureSkipTLSVerify"} {
		if _, ok := spec[field]; ok {
			t.Errorf("APIService spec has %s; cainjector owns the caBundle", field)
		}
	}

	// signet serves with the Secret, read-only, and leaves the APIService alone.
	pod := d.Spec.Template.Spec
	args := pod.Containers[0].Args
	for _, want := range []string{"--tls-cert-file=/var/run/signet/serving/tls.crt", "--tls-private-key-file=/var/run/signet/serving/tls.key", "--ca-bundle-apiservice="} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v: want %s", args, want)
		}
	}
	mounted := false
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != "/var/run/signet/serving" {
			continue
		}
		if !m.ReadOnly {
			t.Error("the serving certificate must be mounted read-only")
		}
		for _, v := range pod.Volumes {
			mounted = mounted || v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == serving.Spec.SecretName
		}
	}
	if !mounted {
		t.Errorf("Secret %s is not mounted at /var/run/signet/serving", serving.Spec.SecretName)
	}
	var role rbacv1.ClusterRole
	c.object(t, "ClusterRole", chartRelease, &role)
	if slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "apiservices") }) {
		t.Error("in cainjector mode the ClusterRole must not grant access to APIServices")
	}
}

// apiServiceSpec is the rendered APIService's spec as a map, to see which
// fields are set at all.
func apiServiceSpec(t *testing.T, c *chart) map[string]interface{} {
	t.Helper()
	var obj struct {
		Spec map[string]interface{} `json:"spec"`
	}
	if err := yaml.Unmarshal(c.docs["APIService/"+framework.SignetAPIServiceName], &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Spec == nil {
		t.Fatalf("the chart renders no APIService %s", framework.SignetAPIServiceName)
	}
	return obj.Spec
}

// bestPracticeProblems lists where a rendering falls short of
// values.best-practice.yaml's promises, on top of what checkDeployment checks
// for every rendering. It returns them rather than failing t so that
// TestChartHardeningCheckIsSensitive can show it notices each one.
func bestPracticeProblems(t *testing.T, c *chart) []string {
	t.Helper()
	var problems []string
	report := func(format string, args ...interface{}) { problems = append(problems, fmt.Sprintf(format, args...)) }

	d := c.deployment(t)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		report("replicas = %v, want at least 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.PriorityClassName != "system-cluster-critical" {
		report("priorityClassName = %q, want system-cluster-critical", pod.PriorityClassName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		report("automountServiceAccountToken must be false")
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		report("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	for _, ctr := range pod.Containers {
		sc := ctr.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			report("container %s securityContext = %+v, want read-only root, non-root, no privilege escalation, drop ALL", ctr.Name, sc)
		}
		r := ctr.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Cpu().IsZero() || r.Limits.Memory().IsZero() {
			report("container %s resources = %+v, want cpu and memory requests and limits", ctr.Name, r)
		}
	}
	podLabels := d.Spec.Template.Labels
	var keys []string
	for _, tsc := range pod.TopologySpreadConstraints {
		keys = append(keys, tsc.TopologyKey)
		if !selectorMatches(tsc.LabelSelector, podLabels) {
			report("topologySpreadConstraint %s: labelSelector %v does not select signet's pods (%v)", tsc.TopologyKey, tsc.LabelSelector, podLabels)
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}) {
		report("topologySpreadConstraints over %v, want zone and hostname", keys)
	}

	if doc, ok := c.docs["PodDisruptionBudget/"+chartRelease]; !ok {
		report("no PodDisruptionBudget")
	} else {
		var p policyv1.PodDisruptionBudget
		if err := yaml.UnmarshalStrict(doc, &p); err != nil {
			t.Fatal(err)
		}
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 1 {
			report("PodDisruptionBudget minAvailable = %v, want 1", p.Spec.MinAvailable)
		}
		if !selectorMatches(p.Spec.Selector, podLabels) {
			report("PodDisruptionBudget selector %v does not select signet's pods", p.Spec.Selector)
		}
	}

	if doc, ok := c.docs["NetworkPolicy/"+chartRelease]; !ok {
		report("no NetworkPolicy")
	} else {
		var n networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict(doc, &n); err != nil {
			t.Fatal(err)
		}
		if ports := ingressPorts(&n); !slices.Equal(ports, []int{6443, 9402}) {
			report("NetworkPolicy admits ports %v, want [6443 9402]", ports)
		}
		if !selectorMatches(&n.Spec.PodSelector, podLabels) {
			report("NetworkPolicy podSelector %v does not select signet's pods", n.Spec.PodSelector)
		}
	}
	return problems
}

// ingressPorts are the ports a NetworkPolicy's ingress rules admit, sorted.
func ingressPorts(n *networkingv1.NetworkPolicy) []int {
	var ports []int
	for _, rule := range n.Spec.Ingress {
		for _, p := range rule.Ports {
			ports = append(ports, p.Port.IntValue())
		}
	}
	slices.Sort(ports)
	return ports
}

// selectorMatches reports whether s is a non-empty selector that selects a
// pod with podLabels.
func selectorMatches(s *metav1.LabelSelector, podLabels map[string]string) bool {
	if s == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && !sel.Empty() && sel.Matches(labels.Set(podLabels))
}

// TestChartHardeningCheckIsSensitive undoes one best-practice setting at a
// time and expects bestPracticeProblems to name it: a check that passes
// whatever the chart renders would prove nothing.
func TestChartHardeningCheckIsSensitive(t *testing.T) {
	for set, want := range map[string]string{
		"replicas=1,podDisruptionBudget.enabled=false":      "replicas",
		"priorityClassName=":                                "priorityClassName",
		"automountServiceAccountToken=true":                 "automountServiceAccountToken",
		"securityContext.readOnlyRootFilesystem=false":      "read-only root",
		"securityContext.capabilities.drop=null":            "drop ALL",
		"podSecurityContext.seccompProfile.type=Unconfined": "seccomp",
		"resources.limits.cpu=null":                         "requests and limits",
		"topologySpreadConstraints=null":                    "zone and hostname",
		"podDisruptionBudget.minAvailable=2,replicas=3":     "minAvailable",
		"networkPolicy.enabled=false":                       "NetworkPolicy",
	} {
		t.Run(set, func(t *testing.T) {
			c := renderChart(t, "signet-helm", "-f", bestPracticeValues(t), "--set", set)
			problems := bestPracticeProblems(t, c)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
				t.Errorf("with --set %s: problems %q, want one about %q", set, problems, want)
			}
		})
	}
}

// TestChartMatchesKustomizeBase holds the chart to artifacts/deploy: the same
// RBAC (so TestShippedRBACIsEnough, which runs signet under the kustomize
// base's roles, covers the chart too) apart from the two rules values switch,
// the same container, and the kustomize base's flags among the chart's.
func TestChartMatchesKustomizeBase(t *testing.T) {
	shipped := readShippedRBAC(t)
	baseRules := shipped.clusterRoles[0].Rules
	isCSRUpdate := func(r rbacv1.PolicyRule) bool {
		return slices.Equal(r.Resources, []string{"certificatesigningrequests"}) && slices.Equal(r.Verbs, []string{"update"})
	}
	isAPIServices := func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "apiservices") }
	isPodCertificates := func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.Resources, "podcertificaterequests") || slices.Contains(r.Resources, "podcertificaterequests/status")
	}
	isTrustBundles := func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.Resources, "clustertrustbundles") || slices.Equal(r.Verbs, []string{"attest"})
	}
	for what, rule := range map[string]func(rbacv1.PolicyRule) bool{
		"the CSR update": isCSRUpdate, "the apiservices": isAPIServices, "the podcertificaterequests": isPodCertificates, "the clustertrustbundles": isTrustBundles,
	} {
		if !slices.ContainsFunc(baseRules, rule) {
			t.Fatalf("artifacts/deploy/clusterrole.yaml: want %s rules the chart toggles", what)
		}
	}

	ns := framework.SignetNamespace
	for name, tc := range map[string]struct {
		set  string
		drop []func(rbacv1.PolicyRule) bool
	}{
		"AllRules":           {set: "writeCAAnnotation=true"},
		"Defaults":           {drop: []func(rbacv1.PolicyRule) bool{isCSRUpdate}},
		"CAInjector":         {set: "servingCerts.mode=cainjector,writeCAAnnotation=true", drop: []func(rbacv1.PolicyRule) bool{isAPIServices}},
		"CAInjectorDefaults": {set: "servingCerts.mode=cainjector", drop: []func(rbacv1.PolicyRule) bool{isAPIServices, isCSRUpdate}},
		"PodCertificatesOff": {set: "writeCAAnnotation=true,podCertificates.enabled=false", drop: []func(rbacv1.PolicyRule) bool{isPodCertificates}},
		"TrustBundlesOff":    {set: "writeCAAnnotation=true,clusterTrustBundles.enabled=false", drop: []func(rbacv1.PolicyRule) bool{isTrustBundles}},
	} {
		t.Run(name, func(t *testing.T) {
			var args []string
			if tc.set != "" {
				args = []string{"--set", tc.set}
			}
			c := renderChart(t, ns, args...)
			want := slices.Clone(baseRules)
			for _, drop := range tc.drop {
				want = slices.DeleteFunc(want, drop)
			}
			var role rbacv1.ClusterRole
			c.object(t, "ClusterRole", shipped.clusterRoles[0].Name, &role)
			if !sameRules(role.Rules, want) {
				t.Errorf("chart ClusterRole rules:\n%s\nwant (artifacts/deploy/clusterrole.yaml, toggled):\n%s", rulesYAML(t, role.Rules), rulesYAML(t, want))
			}
		})
	}

	c := renderChart(t, ns)
	t.Run("Bindings", func(t *testing.T) {
		var sa corev1.ServiceAccount
		c.object(t, "ServiceAccount", shipped.serviceAccount.Name, &sa)
		if sa.Namespace != shipped.serviceAccount.Namespace || !equality.Semantic.DeepEqual(sa.AutomountServiceAccountToken, shipped.serviceAccount.AutomountServiceAccountToken) {
			t.Errorf("chart ServiceAccount %s/%s automount %v, want as artifacts/deploy", sa.Namespace, sa.Name, sa.AutomountServiceAccountToken)
		}
		for _, want := range shipped.clusterRoleBindings {
			var got rbacv1.ClusterRoleBinding
			c.object(t, "ClusterRoleBinding", want.Name, &got)
			if !equality.Semantic.DeepEqual(got.RoleRef, want.RoleRef) || !equality.Semantic.DeepEqual(got.Subjects, want.Subjects) {
				t.Errorf("ClusterRoleBinding %s: roleRef %+v subjects %+v, want %+v %+v", want.Name, got.RoleRef, got.Subjects, want.RoleRef, want.Subjects)
			}
		}
		for _, want := range shipped.roleBindings {
			var got rbacv1.RoleBinding
			c.object(t, "RoleBinding", want.Name, &got)
			if got.Namespace != want.Namespace || !equality.Semantic.DeepEqual(got.RoleRef, want.RoleRef) || !equality.Semantic.DeepEqual(got.Subjects, want.Subjects) {
				t.Errorf("RoleBinding %s/%s: roleRef %+v subjects %+v, want %s/%s %+v %+v", got.Namespace, want.Name, got.RoleRef, got.Subjects, want.Namespace, want.Name, want.RoleRef, want.Subjects)
			}
		}
		for _, want := range shipped.roles {
			var got rbacv1.Role
			c.object(t, "Role", want.Name, &got)
			if got.Namespace != want.Namespace || !sameRules(got.Rules, want.Rules) {
				t.Errorf("Role %s/%s rules:\n%s\nwant %s/%s:\n%s", got.Namespace, want.Name, rulesYAML(t, got.Rules), want.Namespace, want.Name, rulesYAML(t, want.Rules))
			}
		}
	})

	t.Run("Container", func(t *testing.T) {
		var base appsv1.Deployment
		readDeployFile(t, "deployment.yaml", &base)
		got, want := c.deployment(t).Spec.Template.Spec, base.Spec.Template.Spec
		for _, arg := range want.Containers[0].Args {
			if !slices.Contains(got.Containers[0].Args, arg) {
				t.Errorf("chart args %v lack the kustomize base's %s", got.Containers[0].Args, arg)
			}
		}
		gc, wc := got.Containers[0], want.Containers[0]
		for field, pair := range map[string][2]interface{}{
			"ports":                        {gc.Ports, wc.Ports},
			"env":                          {gc.Env, wc.Env},
			"securityContext":              {gc.SecurityContext, wc.SecurityContext},
			"resources":                    {gc.Resources, wc.Resources},
			"startupProbe":                 {gc.StartupProbe, wc.StartupProbe},
			"livenessProbe":                {gc.LivenessProbe, wc.LivenessProbe},
			"readinessProbe":               {gc.ReadinessProbe, wc.ReadinessProbe},
			"volumeMounts":                 {gc.VolumeMounts, wc.VolumeMounts},
			"volumes":                      {got.Volumes, want.Volumes},
			"automountServiceAccountToken": {got.AutomountServiceAccountToken, want.AutomountServiceAccountToken},
		} {
			if !equality.Semantic.DeepEqual(pair[0], pair[1]) {
				t.Errorf("chart %s = %+v, want as artifacts/deploy/deployment.yaml: %+v", field, pair[0], pair[1])
			}
		}
	})

	t.Run("ServiceAndAPIService", func(t *testing.T) {
		var baseSvc, svc corev1.Service
		readDeployFile(t, "service.yaml", &baseSvc)
		c.object(t, "Service", baseSvc.Name, &svc)
		if !equality.Semantic.DeepEqual(svc.Spec.Ports, baseSvc.Spec.Ports) {
			t.Errorf("chart Service ports = %+v, want as artifacts/deploy/service.yaml: %+v", svc.Spec.Ports, baseSvc.Spec.Ports)
		}
		var baseAPISvc, apiSvc apiregistrationv1.APIService
		readDeployFile(t, "apiservice.yaml", &baseAPISvc)
		c.object(t, "APIService", baseAPISvc.Name, &apiSvc)
		if !equality.Semantic.DeepEqual(apiSvc.Spec, baseAPISvc.Spec) {
			t.Errorf("chart APIService spec = %+v, want as artifacts/deploy/apiservice.yaml: %+v", apiSvc.Spec, baseAPISvc.Spec)
		}
	})
}

// readDeployFile decodes the one object in artifacts/deploy/<name> strictly.
func readDeployFile(t *testing.T, name string, obj interface{}) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("artifacts/deploy/%s: %v", name, err)
	}
}

// sameRules reports whether a and b hold the same rules, in any order.
func sameRules(a, b []rbacv1.PolicyRule) bool {
	key := func(r rbacv1.PolicyRule) string { return fmt.Sprintf("%v", r) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func rulesYAML(t *testing.T, rules []rbacv1.PolicyRule) string {
	t.Helper()
	out, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestChartCRDsMatchArtifacts keeps the chart's copies of the Issuer CRDs
// (Helm can only read files inside the chart) byte-for-byte equal to
// artifacts/crds, which the tests install and the kustomize base ships.
func TestChartCRDsMatchArtifacts(t *testing.T) {
	want, err := framework.IssuerCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(chartDir(t), "files", "crds")
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	if g, w := names(got), names(want); !slices.Equal(g, w) {
		t.Fatalf("%s holds %v, want the files of %s: %v", got, g, want, w)
	}
	for _, name := range names(want) {
		a, err := os.ReadFile(filepath.Join(want, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(got, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: cp %s %s", filepath.Join(got, name), filepath.Join(want, name), filepath.Join(want, name), got)
		}
	}
}

// TestChartExternalIssuersAndApproval renders externalIssuers and
// certificateRequests values: each external issuer resource gets a flag and
// read, sign and approve rules; external approval drops signet's approve and
// CertificateRequest status rules.
func TestChartExternalIssuersAndApproval(t *testing.T) {
	ns := framework.SignetNamespace
	hasRule := func(rules []rbacv1.PolicyRule, group, resource, verb, name string) bool {
		return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
				(name == "" || slices.Contains(r.ResourceNames, name))
		})
	}
	c := renderChart(t, ns, "--set", "externalIssuers[0].resource=awspcaissuers.awspca.cert-manager.io",
		"--set", "externalIssuers[1].resource=awspcaclusterissuers.awspca.cert-manager.io,externalIssuers[1].cluster=true",
		"--set", "certificateRequests.namespace=pki,certificateRequests.signTimeout=45s")
	var role rbacv1.ClusterRole
	c.object(t, "ClusterRole", "signet", &role)
	for _, want := range []struct{ group, resource, verb, name string }{
		{"awspca.cert-manager.io", "awspcaissuers", "watch", ""},
		{"awspca.cert-manager.io", "awspcaclusterissuers", "list", ""},
		{"certificates.k8s.io", "signers", "sign", "awspcaissuers.awspca.cert-manager.io/*"},
		{"certificates.k8s.io", "signers", "sign", "awspcaclusterissuers.awspca.cert-manager.io/*"},
		{"cert-manager.io", "signers", "approve", "awspcaissuers.awspca.cert-manager.io/*"},
		{"cert-manager.io", "signers", "approve", "issuers.cert-manager.io/*"},
		{"cert-manager.io", "certificaterequests", "create", ""},
		{"cert-manager.io", "certificaterequests/status", "update", ""},
	} {
		if !hasRule(role.Rules, want.group, want.resource, want.verb, want.name) {
			t.Errorf("ClusterRole lacks %s on %s.%s %s:\n%s", want.verb, want.resource, want.group, want.name, rulesYAML(t, role.Rules))
		}
	}
	args := c.deployment(t).Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--external-issuer=awspcaissuers.awspca.cert-manager.io", "--external-issuer=awspcaclusterissuers.awspca.cert-manager.io,cluster",
		"--certificate-request-namespace=pki", "--sign-timeout=45s"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}

	c = renderChart(t, ns, "--set", "certificateRequests.approval=external")
	c.object(t, "ClusterRole", "signet", &role)
	if hasRule(role.Rules, "cert-manager.io", "signers", "approve", "") || hasRule(role.Rules, "cert-manager.io", "certificaterequests/status", "update", "") {
		t.Errorf("with external approval signet keeps approve rules:\n%s", rulesYAML(t, role.Rules))
	}
	if args := c.deployment(t).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--certificate-request-approval=external") {
		t.Errorf("args %v lack --certificate-request-approval=external", args)
	}
}
