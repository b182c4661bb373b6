package issuers

import "testing"

func TestParseSignerName(t *testing.T) {
	tests := []struct {
		name   string
		want   Ref
		wantOK bool
	}{
		{"issuers.cert-manager.io/sandbox.my-issuer", Ref{KindIssuer, "sandbox", "my-issuer"}, true},
		{"issuers.cert-manager.io/sandbox.name.with.dots", Ref{KindIssuer, "sandbox", "name.with.dots"}, true},
		{"clusterissuers.cert-manager.io/my-ca", Ref{KindClusterIssuer, "", "my-ca"}, true},
		{"clusterissuers.cert-manager.io/name.with.dots", Ref{KindClusterIssuer, "", "name.with.dots"}, true},
		{"issuers.cert-manager.io/no-dot", Ref{}, false},
		{"issuers.cert-manager.io/.name", Ref{}, false},
		{"issuers.cert-manager.io/ns.", Ref{}, false},
		{"clusterissuers.cert-manager.io/", Ref{}, false},
		{"issuers.cert-manager.io", Ref{}, false},
		{"issuers.cert-manager.io/a/b", Ref{}, false},
		{"issuers.example.com/ns.name", Ref{}, false},
		{"issuers/ns.name", Ref{}, false},
		{"certificates.cert-manager.io/ns.name", Ref{}, false},
		{"kubernetes.io/kube-apiserver-client", Ref{}, false},
		{"kubernetes.io/legacy-unknown", Ref{}, false},
		{"", Ref{}, false},
		{"/", Ref{}, false},
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
