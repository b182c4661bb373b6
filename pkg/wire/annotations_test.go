package wire

import (
	"strings"
	"testing"
	"time"
)

func TestParseRequestAnnotations(t *testing.T) {
	dur := func(d time.Duration) *time.Duration { return &d }
	tests := []struct {
		desc    string
		in      map[string]string
		want    RequestAnnotations
		wantErr string // substring; empty: no error
	}{
		{"none", nil, RequestAnnotations{}, ""},
		{"duration", map[string]string{AnnotationRequestDuration: "2h"}, RequestAnnotations{Duration: dur(2 * time.Hour)}, ""},
		{"zero duration is present, not absent", map[string]string{AnnotationRequestDuration: "0s"}, RequestAnnotations{Duration: dur(0)}, ""},
		{"negative duration parses; the policy refuses it", map[string]string{AnnotationRequestDuration: "-1h"}, RequestAnnotations{Duration: dur(-time.Hour)}, ""},
		{"empty duration is present, so parsed", map[string]string{AnnotationRequestDuration: ""}, RequestAnnotations{}, "is not a duration"},
		{"unit typo", map[string]string{AnnotationRequestDuration: "1hh"}, RequestAnnotations{}, `"1hh" is not a duration`},
		{"overflow", map[string]string{AnnotationRequestDuration: "99999999999h"}, RequestAnnotations{}, "is not a duration"},
		{"over 64 bytes", map[string]string{AnnotationRequestDuration: strings.Repeat("1", 100) + "h"}, RequestAnnotations{}, "longer than 64 bytes"},
		{"is-ca true", map[string]string{AnnotationRequestIsCA: "true"}, RequestAnnotations{IsCA: true}, ""},
		{"is-ca True is not true", map[string]string{AnnotationRequestIsCA: "True"}, RequestAnnotations{}, ""},
		{"is-ca yes is not true", map[string]string{AnnotationRequestIsCA: "yes"}, RequestAnnotations{}, ""},
		{"private key Secret", map[string]string{AnnotationPrivateKeySecretName: "app-key"}, RequestAnnotations{PrivateKeySecretName: "app-key"}, ""},
		{"a bad duration still reports the rest", map[string]string{AnnotationRequestDuration: "x", AnnotationRequestIsCA: "true"}, RequestAnnotations{IsCA: true}, "is not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := ParseRequestAnnotations(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if got.IsCA != tt.want.IsCA || got.PrivateKeySecretName != tt.want.PrivateKeySecretName ||
				(got.Duration == nil) != (tt.want.Duration == nil) || (got.Duration != nil && *got.Duration != *tt.want.Duration) {
				t.Errorf("got %+v (duration %v), want %+v (duration %v)", got, deref(got.Duration), tt.want, deref(tt.want.Duration))
			}
		})
	}
}

func deref(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return *d
}
