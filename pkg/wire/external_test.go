package wire

import "testing"

func TestParseExternalIssuer(t *testing.T) {
	tests := []struct {
		in      string
		want    ExternalIssuer
		wantErr bool
	}{
		{in: "awspcaissuers.awspca.cert-manager.io", want: ExternalIssuer{Resource: "awspcaissuers.awspca.cert-manager.io", Kind: KindIssuer}},
		{in: "awspcaclusterissuers.awspca.cert-manager.io,cluster", want: ExternalIssuer{Resource: "awspcaclusterissuers.awspca.cert-manager.io", Kind: KindClusterIssuer}},
		{in: "testissuers.example.com", want: ExternalIssuer{Resource: "testissuers.example.com", Kind: KindIssuer}},
		{in: "stepissuers.certmanager.step.sm", want: ExternalIssuer{Resource: "stepissuers.certmanager.step.sm", Kind: KindIssuer}},
		{in: "testissuers.example.com,namespaced", wantErr: true},
		{in: "testissuers.example.com,", wantErr: true},
		{in: "testissuers", wantErr: true},
		{in: "testissuers.", wantErr: true},
		{in: ".example.com", wantErr: true},
		{in: "TestIssuers.example.com", wantErr: true},
		{in: "test_issuers.example.com", wantErr: true},
		{in: "testissuers.localhost", wantErr: true}, // a CRD's group has a dot
		{in: "testissuers.example..com", wantErr: true},
		{in: "testissuers.example.com/", wantErr: true},
		{in: "issuers.cert-manager.io", wantErr: true},
		{in: "clusterissuers.cert-manager.io,cluster", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseExternalIssuer(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseExternalIssuer(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseExternalIssuer(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestSignerNamesParse(t *testing.T) {
	names, err := NewSignerNames(
		ExternalIssuer{Resource: "testissuers.example.com", Kind: KindIssuer},
		ExternalIssuer{Resource: "testclusterissuers.example.com", Kind: KindClusterIssuer},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		want   IssuerRef
		wantOK bool
	}{
		{"testissuers.example.com/sandbox.my-issuer", IssuerRef{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "sandbox", Name: "my-issuer"}, true},
		{"testissuers.example.com/sandbox.name.with.dots", IssuerRef{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "sandbox", Name: "name.with.dots"}, true},
		{"testclusterissuers.example.com/my-ca", IssuerRef{Kind: KindClusterIssuer, External: "testclusterissuers.example.com", Name: "my-ca"}, true},
		{"testclusterissuers.example.com/name.with.dots", IssuerRef{Kind: KindClusterIssuer, External: "testclusterissuers.example.com", Name: "name.with.dots"}, true},
		// cert-manager's own still parse.
		{"issuers.cert-manager.io/sandbox.my-issuer", IssuerRef{Kind: KindIssuer, Namespace: "sandbox", Name: "my-issuer"}, true},
		{"clusterissuers.cert-manager.io/my-ca", IssuerRef{Kind: KindClusterIssuer, Name: "my-ca"}, true},
		{"testissuers.example.com/no-dot", IssuerRef{}, false},
		{"testissuers.example.com/.name", IssuerRef{}, false},
		{"testissuers.example.com/ns.", IssuerRef{}, false},
		{"testissuers.example.com/", IssuerRef{}, false},
		{"testclusterissuers.example.com/", IssuerRef{}, false},
		{"testissuers.example.com/a/b", IssuerRef{}, false},
		{"testissuers.example.com", IssuerRef{}, false},
		{"otherissuers.example.com/ns.name", IssuerRef{}, false},
		{"testissuers.example.org/ns.name", IssuerRef{}, false},
		{"TESTISSUERS.example.com/ns.name", IssuerRef{}, false},
		{"kubernetes.io/kube-apiserver-client", IssuerRef{}, false},
	}
	for _, tt := range tests {
		got, ok := names.Parse(tt.name)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
		if ok && got.SignerName() != tt.name {
			t.Errorf("Ref %+v .SignerName() = %q, want %q", got, got.SignerName(), tt.name)
		}
	}
	// The zero value knows cert-manager's names only.
	if _, ok := (SignerNames{}).Parse("testissuers.example.com/sandbox.my-issuer"); ok {
		t.Error("the zero SignerNames parsed an external signer name")
	}
	if _, err := NewSignerNames(ExternalIssuer{Resource: "a.b.c"}, ExternalIssuer{Resource: "a.b.c", Kind: KindClusterIssuer}); err == nil {
		t.Error("a resource given twice: no error")
	}
}

func TestExternalIssuerRefString(t *testing.T) {
	for ref, want := range map[IssuerRef]string{
		{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "ns", Name: "a"}: "testissuers.example.com ns/a",
		{Kind: KindClusterIssuer, External: "testclusterissuers.example.com", Name: "a"}:    "testclusterissuers.example.com a",
		{Kind: KindIssuer, Namespace: "ns", Name: "a"}:                                      "Issuer ns/a",
		{Kind: KindClusterIssuer, Name: "a"}:                                                "ClusterIssuer a",
	} {
		if got := ref.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", ref, got, want)
		}
	}
}

func TestObjectRefs(t *testing.T) {
	names, err := NewSignerNames(
		ExternalIssuer{Resource: "testissuers.example.com", Kind: KindIssuer},
		ExternalIssuer{Resource: "testclusterissuers.example.com", Kind: KindClusterIssuer},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind       IssuerKind
		ns, object string
		want       []IssuerRef
	}{
		{KindIssuer, "ns", "ca", []IssuerRef{{Kind: KindIssuer, Namespace: "ns", Name: "ca"}}},
		{KindIssuer, "ns", "testissuers.example.com.step", []IssuerRef{
			{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "ns", Name: "step"},
			{Kind: KindIssuer, Namespace: "ns", Name: "testissuers.example.com.step"}}},
		{KindIssuer, "ns", "testissuers.example.com.a.b", []IssuerRef{
			{Kind: KindIssuer, External: "testissuers.example.com", Namespace: "ns", Name: "a.b"},
			{Kind: KindIssuer, Namespace: "ns", Name: "testissuers.example.com.a.b"}}},
		// A cluster-scoped resource's prefix means nothing for signers, and the reverse.
		{KindIssuer, "ns", "testclusterissuers.example.com.x", []IssuerRef{{Kind: KindIssuer, Namespace: "ns", Name: "testclusterissuers.example.com.x"}}},
		{KindClusterIssuer, "", "testclusterissuers.example.com.x", []IssuerRef{
			{Kind: KindClusterIssuer, External: "testclusterissuers.example.com", Name: "x"},
			{Kind: KindClusterIssuer, Name: "testclusterissuers.example.com.x"}}},
		{KindIssuer, "ns", "testissuers.example.com.", []IssuerRef{{Kind: KindIssuer, Namespace: "ns", Name: "testissuers.example.com."}}},
	}
	for _, tt := range tests {
		got := names.ObjectRefs(tt.kind, tt.ns, tt.object)
		if len(got) != len(tt.want) {
			t.Errorf("ObjectRefs(%s, %q, %q) = %+v, want %+v", tt.kind, tt.ns, tt.object, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ObjectRefs(%s, %q, %q) = %+v, want %+v", tt.kind, tt.ns, tt.object, got, tt.want)
			}
			if got[i].ObjectName() != tt.object {
				t.Errorf("%+v.ObjectName() = %q, want %q", got[i], got[i].ObjectName(), tt.object)
			}
		}
	}
}
