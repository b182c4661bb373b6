package wire

import "testing"

func TestParseSignerName(t *testing.T) {
	tests := []struct {
		name   string
		want   IssuerRef
		wantOK bool
	}{
		{"issuers.cert-manager.io/sandbox.my-issuer", IssuerRef{KindIssuer, "sandbox", "my-issuer"}, true},
		{"issuers.cert-manager.io/sandbox.name.with.dots", IssuerRef{KindIssuer, "sandbox", "name.with.dots"}, true},
		{"clusterissuers.cert-manager.io/my-ca", IssuerRef{KindClusterIssuer, "", "my-ca"}, true},
		{"clusterissuers.cert-manager.io/name.with.dots", IssuerRef{KindClusterIssuer, "", "name.with.dots"}, true},
		{"issuers.cert-manager.io/no-dot", IssuerRef{}, false},
		{"issuers.cert-manager.io/.name", IssuerRef{}, false},
		{"issuers.cert-manager.io/ns.", IssuerRef{}, false},
		{"clusterissuers.cert-manager.io/", IssuerRef{}, false},
		{"issuers.cert-manager.io", IssuerRef{}, false},
		{"issuers.cert-manager.io/a/b", IssuerRef{}, false},
		{"issuers.example.com/ns.name", IssuerRef{}, false},
		{"issuers/ns.name", IssuerRef{}, false},
		{"certificates.cert-manager.io/ns.name", IssuerRef{}, false},
		{"kubernetes.io/kube-apiserver-client", IssuerRef{}, false},
		{"kubernetes.io/legacy-unknown", IssuerRef{}, false},
		{"", IssuerRef{}, false},
		{"/", IssuerRef{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseSignerName(tt.name)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseSignerName(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
		if ok && got.SignerName() != tt.name {
			t.Errorf("Ref %+v .SignerName() = %q, want %q", got, got.SignerName(), tt.name)
		}
	}
}
