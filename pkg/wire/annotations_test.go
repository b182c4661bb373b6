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
		expiry  *int32
		want    RequestAnnotations
		wantErr string // substring; empty: no error
	}{
		{"none", nil, nil, RequestAnnotations{}, ""},
		{"expirationSeconds", nil, ptr(3600), RequestAnnotations{Duration: dur(time.Hour)}, ""},
		{"the annotation wins over expirationSeconds", map[string]string{AnnotationRequestDuration: "2h"}, ptr(3600), RequestAnnotations{Duration: dur(2 * time.Hour)}, ""},
		{"a bad annotation wins over a good expirationSeconds", map[string]string{AnnotationRequestDuration: "2 hours"}, ptr(3600), RequestAnnotations{}, "is not a duration"},
		{"expirationSeconds 0 is present", nil, ptr(0), RequestAnnotations{Duration: dur(0)}, ""},
		{"duration", map[string]string{AnnotationRequestDuration: "2h"}, nil, RequestAnnotations{Duration: dur(2 * time.Hour)}, ""},
		{"zero duration is present, not absent", map[string]string{AnnotationRequestDuration: "0s"}, nil, RequestAnnotations{Duration: dur(0)}, ""},
		{"negative duration parses; the policy refuses it", map[string]string{AnnotationRequestDuration: "-1h"}, nil, RequestAnnotations{Duration: dur(-time.Hour)}, ""},
		{"empty duration is present, so parsed", map[string]string{AnnotationRequestDuration: ""}, nil, RequestAnnotations{}, "is not a duration"},
		{"unit typo", map[string]string{AnnotationRequestDuration: "1hh"}, nil, RequestAnnotations{}, `"1hh" is not a duration`},
		{"overflow", map[string]string{AnnotationRequestDuration: "99999999999h"}, nil, RequestAnnotations{}, "is not a duration"},
		{"bytes that quote long are not echoed", map[string]string{AnnotationRequestDuration: strings.Repeat("\xe4", 40)}, nil, RequestAnnotations{}, "its value is not a duration"},
		{"over 64 bytes", map[string]string{AnnotationRequestDuration: strings.Repeat("1", 100) + "h"}, nil, RequestAnnotations{}, "longer than 64 bytes"},
		{"is-ca true", map[string]string{AnnotationRequestIsCA: "true"}, nil, RequestAnnotations{IsCA: true}, ""},
		{"is-ca True is not true", map[string]string{AnnotationRequestIsCA: "True"}, nil, RequestAnnotations{}, ""},
		{"is-ca yes is not true", map[string]string{AnnotationRequestIsCA: "yes"}, nil, RequestAnnotations{}, ""},
		{"private key Secret", map[string]string{AnnotationPrivateKeySecretName: "app-key"}, nil, RequestAnnotations{PrivateKeySecretName: "app-key"}, ""},
		{"a bad duration still reports the rest", map[string]string{AnnotationRequestDuration: "x", AnnotationRequestIsCA: "true"}, nil, RequestAnnotations{IsCA: true}, "is not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := ParseRequestAnnotations(tt.in, tt.expiry)
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

func ptr(i int32) *int32 { return &i }

func deref(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return *d
}
