package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/internal/testpki"
)

// expect is the documented outcome of a bad request.
type expect struct {
	kind   string // "rejected" (kube-apiserver refuses to create it), "ignored", "waiting" (an event with reason), "failed" (a Failed condition with reason)
	reason string
}

var (
	ignored  = expect{kind: "ignored"}
	rejected = expect{kind: "rejected"}
	waiting  = func(r string) expect { return expect{"waiting", r} }
	failed   = func(r string) expect { return expect{"failed", r} }
)

// rawCSR builds a PKCS#10 request with extra extensions or a tampered signature.
func rawCSR(t *testing.T, tmpl *x509.CertificateRequest, tamper bool) []byte {
	t.Helper()
	key, err := testpki.NewKey(testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		// The signature is the last bytes of the DER: flip one of them.
		der = append([]byte(nil), der...)
		der[len(der)-3] ^= 0xff
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func extension(t *testing.T, oid asn1.ObjectIdentifier, v interface{}) pkix.Extension {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: b}
}

// TestBadInputOutcomes drives every hostile or broken request through the
// real kube-apiserver and checks the documented outcome, then that signet
// is still the same process with bounded memory.
func TestBadInputOutcomes(t *testing.T) {
	pidBefore := env.signet.Pid()
	createNamespace(t, "bad")
	createNamespace(t, "cert-manager")
	good := newCA(t, testpki.CAOptions{})
	other := newCA(t, testpki.CAOptions{})
	expired := newCA(t, testpki.CAOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	putCASecret(t, "bad", "ca", good.CertPEM(), good.KeyPEM())
	putCASecret(t, "bad", "expired", expired.CertPEM(), expired.KeyPEM())
	putCASecret(t, "bad", "mismatch", good.CertPEM(), other.KeyPEM())
	putCASecret(t, "bad", "other-key", nil, other.KeyPEM())
	createIssuer(t, "bad", "ca", nil, caSpec("ca"))
	createIssuer(t, "bad", "expired", nil, caSpec("expired"))
	createIssuer(t, "bad", "mismatch", nil, caSpec("mismatch"))
	createIssuer(t, "bad", "no-secret", nil, caSpec("absent"))
	createIssuer(t, "bad", "self", nil, selfSignedSpec())
	createIssuer(t, "bad", "vault", nil, map[string]interface{}{"vault": map[string]interface{}{"server": "https://vault"}})
	createIssuer(t, "bad", "two-types", nil, map[string]interface{}{"ca": map[string]interface{}{"secretName": "ca"}, "selfSigned": map[string]interface{}{}})
	createIssuer(t, "", "bad-cluster-no-secret", nil, caSpec("absent-in-cert-manager"))

	const ca = "issuers.cert-manager.io/bad.ca"
	manySANs := make([]string, 5000)
	for i := range manySANs {
		manySANs[i] = "host-" + strconv.Itoa(i) + ".example.com"
	}
	hugeCN := strings.Repeat("x", 300<<10)
	bcTrue := extension(t, asn1.ObjectIdentifier{2, 5, 29, 19}, struct {
		IsCA bool `asn1:"optional"`
	}{true})
	ekuServer := extension(t, asn1.ObjectIdentifier{2, 5, 29, 37}, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	kuCertSign := extension(t, asn1.ObjectIdentifier{2, 5, 29, 15}, asn1.BitString{Bytes: []byte{0x04}, BitLength: 6})
	isCA := map[string]string{"experimental.cert-manager.io/request-is-ca": "true"}
	dur := func(d string) map[string]string {
		return map[string]string{"experimental.cert-manager.io/request-duration": d}
	}

	cases := []struct {
		desc      string
		req       csrRequest
		unapprove bool
		want      expect
	}{
		// Not signet's: never touched.
		{desc: "issuers without namespace dot", req: csrRequest{signerName: "issuers.cert-manager.io/nodot"}, want: ignored},
		{desc: "another group", req: csrRequest{signerName: "issuers.example.com/bad.ca"}, want: ignored},
		{desc: "unknown resource type", req: csrRequest{signerName: "certificates.cert-manager.io/bad.ca"}, want: ignored},
		{desc: "kubernetes.io signer", req: csrRequest{signerName: "kubernetes.io/kube-apiserver-client"}, want: ignored},
		{desc: "foreign domain", req: csrRequest{signerName: "example.com/bad.ca"}, want: ignored},
		{desc: "group without type", req: csrRequest{signerName: "cert-manager.io/bad.ca"}, want: ignored},
		// Waiting, with an event, for something to change.
		{desc: "not approved", req: csrRequest{signerName: ca}, unapprove: true, want: waiting("WaitingApproval")},
		{desc: "unknown issuer", req: csrRequest{signerName: "issuers.cert-manager.io/bad.nope"}, want: waiting("IssuerNotFound")},
		{desc: "unknown namespace", req: csrRequest{signerName: "issuers.cert-manager.io/no-such-ns.ca"}, want: waiting("IssuerNotFound")},
		{desc: "unknown cluster issuer", req: csrRequest{signerName: "clusterissuers.cert-manager.io/nope"}, want: waiting("IssuerNotFound")},
		{desc: "issuer name with dots, unknown", req: csrRequest{signerName: "issuers.cert-manager.io/bad.a.b.c"}, want: waiting("IssuerNotFound")},
		{desc: "CA Secret missing", req: csrRequest{signerName: "issuers.cert-manager.io/bad.no-secret"}, want: waiting("SecretMissing")},
		{desc: "cluster CA Secret missing", req: csrRequest{signerName: "clusterissuers.cert-manager.io/bad-cluster-no-secret"}, want: waiting("SecretMissing")},
		{desc: "expired CA", req: csrRequest{signerName: "issuers.cert-manager.io/bad.expired"}, want: waiting("IssuerNotReady")},
		{desc: "CA key mismatch", req: csrRequest{signerName: "issuers.cert-manager.io/bad.mismatch"}, want: waiting("IssuerNotReady")},
		{desc: "issuer with two types", req: csrRequest{signerName: "issuers.cert-manager.io/bad.two-types"}, want: waiting("IssuerNotReady")},
		{desc: "vault issuer", req: csrRequest{signerName: "issuers.cert-manager.io/bad.vault"}, want: waiting("IssuerTypeNotSupported")},
		{desc: "selfsigned key Secret missing", req: csrRequest{signerName: "issuers.cert-manager.io/bad.self",
			annotations: map[string]string{"experimental.cert-manager.io/private-key-secret-name": "absent"}}, want: waiting("SecretMissing")},
		// Failed, with a reason.
		{desc: "requester without reference", req: csrRequest{signerName: ca, as: "bad-requester"}, want: failed("DeniedReference")},
		{desc: "unparsable duration", req: csrRequest{signerName: ca, annotations: dur("forever")}, want: failed("ErrorParseDuration")},
		{desc: "duration with unit typo", req: csrRequest{signerName: ca, annotations: dur("1hh")}, want: failed("ErrorParseDuration")},
		{desc: "duration under 10m", req: csrRequest{signerName: ca, annotations: dur("9m59s")}, want: failed("InvalidDuration")},
		{desc: "negative duration", req: csrRequest{signerName: ca, annotations: dur("-1h")}, want: failed("InvalidDuration")},
		{desc: "zero duration", req: csrRequest{signerName: ca, annotations: dur("0s")}, want: failed("InvalidDuration")},
		// kube-apiserver verifies the request's signature itself; signet checks
		// again (unit tests), for the sign subresource's sake.
		{desc: "signature does not verify", req: csrRequest{signerName: ca, rawRequest: rawCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tampered"}}, true)}, want: rejected},
		{desc: "CSR says CA, annotation absent", req: csrRequest{signerName: ca, rawRequest: rawCSR(t, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{bcTrue}}, false)}, want: failed("IsCAMismatch")},
		{desc: "annotation says CA, CSR encodes no CA usage", req: csrRequest{signerName: ca, annotations: isCA,
			rawRequest: rawCSR(t, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{extension(t, asn1.ObjectIdentifier{2, 5, 29, 19}, struct{}{})}}, false)}, want: failed("IsCAMismatch")},
		{desc: "encoded server auth, usages client auth", req: csrRequest{signerName: ca, rawRequest: rawCSR(t, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{ekuServer}}, false)}, want: failed("KeyUsageMismatch")},
		{desc: "encoded cert sign, usages without it", req: csrRequest{signerName: ca, rawRequest: rawCSR(t, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{kuCertSign}}, false)}, want: failed("KeyUsageMismatch")},
		{desc: "thousands of SANs", req: csrRequest{signerName: ca, dnsNames: manySANs}, want: failed("RequestTooLarge")},
		{desc: "300 KiB subject", req: csrRequest{signerName: ca, commonName: hugeCN}, want: failed("RequestTooLarge")},
		{desc: "selfsigned without key annotation", req: csrRequest{signerName: "issuers.cert-manager.io/bad.self"}, want: failed("MissingAnnotation")},
		{desc: "selfsigned key does not match", req: csrRequest{signerName: "issuers.cert-manager.io/bad.self",
			annotations: map[string]string{"experimental.cert-manager.io/private-key-secret-name": "other-key"}}, want: failed("ErrorKeyMatch")},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		if (tc.want.kind == "failed" || tc.want.kind == "waiting") && tc.want.reason == "" {
			t.Fatalf("%s: a %s case must name its exact reason", tc.desc, tc.want.kind)
		}
	}
	names := make([]string, len(cases))
	for i := range cases {
		if cases[i].want.kind == "rejected" {
			if _, err := tryCreateCSR(t, &cases[i].req); err == nil {
				t.Errorf("%s: kube-apiserver accepted the CSR", cases[i].desc)
			}
			continue
		}
		names[i] = createCSR(t, &cases[i].req)
		if !cases[i].unapprove {
			approve(t, names[i])
		}
	}
	// A control CSR approved last: once it is issued, signet has seen all the others.
	control := createCSR(t, &csrRequest{signerName: ca})
	approve(t, control)
	mustIssue(t, control)

	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			name := names[i]
			switch tc.want.kind {
			case "rejected":
				return
			case "failed":
				o := waitOutcome(t, name, 30*time.Second)
				if o.failed == nil {
					t.Fatalf("not Failed (timeout=%v, certificate=%d bytes)\n%s", o.timeout, len(o.csr.Status.Certificate), eventsFor(t, name))
				}
				if o.failed.Reason != tc.want.reason {
					t.Errorf("Failed reason %q (%s), want %q", o.failed.Reason, o.failed.Message, tc.want.reason)
				}
				if o.failed.Reason == "" || o.failed.Message == "" {
					t.Errorf("Failed condition without reason or message: %+v", o.failed)
				}
				t.Logf("Failed/%s: %.200s", o.failed.Reason, o.failed.Message)
				if !strings.Contains(eventsFor(t, name), "Warning "+o.failed.Reason+":") {
					t.Errorf("no Warning event %s:\n%s", o.failed.Reason, eventsFor(t, name))
				}
			case "waiting":
				waitEvent(t, name, tc.want.reason)
				assertUntouched(t, name, false)
			case "ignored":
				assertUntouched(t, name, true)
			}
		})
	}

	if pid := env.signet.Pid(); pid != pidBefore {
		t.Errorf("signet restarted during the bad-input table (pid %d → %d)", pidBefore, pid)
	}
	if rss := rssBytes(t, pidBefore); rss > 512<<20 {
		t.Errorf("signet RSS %d MiB after the bad-input table, want < 512 MiB", rss>>20)
	} else {
		t.Logf("signet RSS after the bad-input table: %d MiB", rss>>20)
	}
}

// assertUntouched: no certificate, no Failed condition, and (if quiet) no event at all.
func assertUntouched(t *testing.T, name string, quiet bool) {
	t.Helper()
	csr, err := env.kube.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csr.Status.Certificate) > 0 {
		t.Errorf("%s was issued", name)
	}
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateFailed {
			t.Errorf("%s Failed: %s %s", name, c.Reason, c.Message)
		}
	}
	if ev := eventsFor(t, name); quiet && ev != "" {
		t.Errorf("signet acted on a CSR that is not its own:\n%s", ev)
	}
}

func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("reading RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
