package issuers

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func issuerObject(kind, ns, name string, spec map[string]interface{}) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "cert-manager.io/v1",
		"kind":       kind,
		"metadata":   map[string]interface{}{"name": name},
	}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

func TestFromUnstructured(t *testing.T) {
	tests := []struct {
		desc     string
		obj      *unstructured.Unstructured
		wantType Type
		wantErr  bool // conversion itself fails
		wantBad  bool // ConfigError set
		wantCA   *CAConfig
	}{
		{desc: "CA issuer with URLs", obj: issuerObject("Issuer", "ns", "ca", map[string]interface{}{"ca": map[string]interface{}{
			"secretName": "ca-key", "crlDistributionPoints": []interface{}{"http://crl"}, "ocspServers": []interface{}{"http://ocsp"}, "issuingCertificateURLs": []interface{}{"http://aia"}}}),
			wantType: TypeCA, wantCA: &CAConfig{SecretName: "ca-key", CRLDistributionPoints: []string{"http://crl"}, OCSPServers: []string{"http://ocsp"}, IssuingCertificateURLs: []string{"http://aia"}}},
		{desc: "selfSigned cluster issuer", obj: issuerObject("ClusterIssuer", "", "ss", map[string]interface{}{"selfSigned": map[string]interface{}{}}), wantType: TypeSelfSigned},
		{desc: "vault", obj: issuerObject("Issuer", "ns", "v", map[string]interface{}{"vault": map[string]interface{}{"server": "x"}}), wantType: TypeVault},
		{desc: "acme", obj: issuerObject("ClusterIssuer", "", "le", map[string]interface{}{"acme": map[string]interface{}{}}), wantType: TypeACME},
		{desc: "venafi", obj: issuerObject("Issuer", "ns", "v", map[string]interface{}{"venafi": map[string]interface{}{}}), wantType: TypeVenafi},
		{desc: "no spec", obj: issuerObject("Issuer", "ns", "x", nil), wantType: TypeUnknown, wantBad: true},
		{desc: "empty spec", obj: issuerObject("Issuer", "ns", "x", map[string]interface{}{}), wantType: TypeUnknown, wantBad: true},
		{desc: "two types", obj: issuerObject("Issuer", "ns", "x", map[string]interface{}{"ca": map[string]interface{}{"secretName": "s"}, "selfSigned": map[string]interface{}{}}), wantType: TypeUnknown, wantBad: true},
		{desc: "CA without secretName", obj: issuerObject("Issuer", "ns", "x", map[string]interface{}{"ca": map[string]interface{}{}}), wantType: TypeCA, wantBad: true},
		{desc: "CA secretName of wrong type", obj: issuerObject("Issuer", "ns", "x", map[string]interface{}{"ca": map[string]interface{}{"secretName": int64(3)}}), wantType: TypeCA, wantBad: true},
		{desc: "spec of wrong type", obj: issuerObject("Issuer", "ns", "x", nil), wantType: TypeUnknown, wantBad: true},
		{desc: "other kind", obj: issuerObject("Certificate", "ns", "x", map[string]interface{}{}), wantErr: true},
	}
	tests[len(tests)-2].obj.Object["spec"] = "a string"
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			iss, err := FromUnstructured(tt.obj)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if iss.Type != tt.wantType {
				t.Errorf("Type = %q, want %q", iss.Type, tt.wantType)
			}
			if (iss.ConfigError != "") != tt.wantBad {
				t.Errorf("ConfigError = %q, want set: %v", iss.ConfigError, tt.wantBad)
			}
			if tt.wantCA != nil && !reflect.DeepEqual(iss.CA, tt.wantCA) {
				t.Errorf("CA = %+v, want %+v", iss.CA, tt.wantCA)
			}
			if iss.Kind == KindClusterIssuer && iss.Namespace != "" {
				t.Errorf("ClusterIssuer has namespace %q", iss.Namespace)
			}
		})
	}
}

func TestFromUnstructuredReadsTheStatusReadyCondition(t *testing.T) {
	withConditions := func(conds ...interface{}) *unstructured.Unstructured {
		u := issuerObject("Issuer", "ns", "v", map[string]interface{}{"vault": map[string]interface{}{}})
		u.SetGeneration(4)
		u.Object["status"] = map[string]interface{}{"conditions": conds}
		return u
	}
	long := string(make([]byte, 5000))
	tests := []struct {
		desc string
		obj  *unstructured.Unstructured
		want *StatusCondition
	}{
		{"no status", issuerObject("Issuer", "ns", "v", map[string]interface{}{"vault": map[string]interface{}{}}), nil},
		{"Ready among others", withConditions(
			map[string]interface{}{"type": "Other", "status": "False"},
			map[string]interface{}{"type": "Ready", "status": "True", "reason": "VaultVerified", "message": "Vault verified", "observedGeneration": int64(4)}),
			&StatusCondition{Status: "True", Reason: "VaultVerified", Message: "Vault verified", ObservedGeneration: 4}},
		{"observedGeneration as JSON decodes a number", withConditions(
			map[string]interface{}{"type": "Ready", "status": "False", "observedGeneration": float64(3)}),
			&StatusCondition{Status: "False", ObservedGeneration: 3}},
		{"no Ready condition", withConditions(map[string]interface{}{"type": "Other", "status": "True"}), nil},
		{"a condition that is not an object", withConditions("Ready"), nil},
		{"a huge message is cut", withConditions(map[string]interface{}{"type": "Ready", "status": "False", "message": long}),
			&StatusCondition{Status: "False", Message: long[:maxStatusText] + "..."}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			iss, err := FromUnstructured(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(iss.StatusReady, tt.want) {
				t.Errorf("StatusReady = %+v, want %+v", iss.StatusReady, tt.want)
			}
			if iss.ObjectKind != "Issuer" || iss.Generation != tt.obj.GetGeneration() {
				t.Errorf("ObjectKind %q, Generation %d", iss.ObjectKind, iss.Generation)
			}
		})
	}
}
