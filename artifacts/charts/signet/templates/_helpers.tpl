{{/* Names, labels and the few constants every template shares. */}}

{{- define "signet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object of the release: "signet" for a release named signet,
else "<release>-signet". It also names the Service (the serving certificate's
DNS names) and the leader Lease.
*/}}
{{- define "signet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "signet.labels" -}}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/part-of: signet
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The APIService is one per cluster: its name is the group version. */}}
{{- define "signet.apiServiceName" -}}
v1alpha1.cert-manager.io
{{- end }}

{{- define "signet.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* cainjector mode: the CA Certificate whose CA cainjector puts in the APIService. */}}
{{- define "signet.caCertificateName" -}}
{{ include "signet.fullname" . }}-ca
{{- end }}

{{- define "signet.servingSecretName" -}}
{{ include "signet.fullname" . }}-serving
{{- end }}

{{/* Fails the render on values that can't work, with what to change. */}}
{{- define "signet.validate" -}}
{{- $mode := .Values.servingCerts.mode }}
{{- if not (has $mode (list "self" "cainjector")) }}
{{- fail (printf "servingCerts.mode must be self or cainjector, not %q" $mode) }}
{{- end }}
{{- if and (eq $mode "cainjector") .Values.crds.enabled }}
{{- fail "servingCerts.mode=cainjector needs cert-manager, which brings the complete Issuer CRDs: set crds.enabled=false" }}
{{- end }}
{{- if not (has .Values.certificateRequests.approval (list "signet" "external")) }}
{{- fail (printf "certificateRequests.approval must be signet or external, not %q" .Values.certificateRequests.approval) }}
{{- end }}
{{- range .Values.externalIssuers }}
{{- if not (regexMatch "^[a-z0-9-]+\\.[a-z0-9.-]+$" (toString .resource)) }}
{{- fail (printf "externalIssuers: resource %q is not <resource>.<group> (e.g. awspcaissuers.awspca.cert-manager.io)" (toString .resource)) }}
{{- end }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- $min := toString .minAvailable }}
{{- if and .enabled (not .maxUnavailable) (not (contains "%" $min)) (le (int $.Values.replicas) (int $min)) }}
{{- fail (printf "podDisruptionBudget.minAvailable %s with %d replicas blocks every node drain: set replicas above it, or use maxUnavailable" $min (int $.Values.replicas)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The signer names signet signs (and approves CertificateRequests) for, as a
YAML flow list of RBAC resourceNames: cert-manager's two domains and one per
external issuer resource.
*/}}
{{- define "signet.signerDomains" -}}
{{- $names := list "issuers.cert-manager.io/*" "clusterissuers.cert-manager.io/*" }}
{{- range .Values.externalIssuers }}
{{- $names = append $names (printf "%s/*" .resource) }}
{{- end }}
{{- $names | toJson }}
{{- end }}
