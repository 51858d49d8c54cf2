{{/*
Names. Every component keeps the name the platform manifest (payplane_core.platform) gives it,
so Services are reachable as http://<component>:<port> inside the namespace, exactly the URLs
the charts hand to the services.
*/}}
{{- define "payplane-lib.name" -}}
{{- .Values.component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "payplane-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "payplane-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "payplane-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "payplane-lib.labels" -}}
helm.sh/chart: {{ include "payplane-lib.chart" . }}
{{ include "payplane-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: payplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The image: global registry and tag win over the chart's, a digest over both. */}}
{{- define "payplane-lib.image" -}}
{{- $registry := .Values.global.imageRegistry | default "" -}}
{{- $repository := ternary (printf "%s/%s" $registry .Values.image.repository) .Values.image.repository (ne $registry "") -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Values.global.imageTag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Hardened by default; a chart may add to these through its values, never weaken them by omission. */}}
{{- define "payplane-lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser | default 10001 }}
runAsGroup: {{ .Values.securityContext.runAsUser | default 10001 }}
fsGroup: {{ .Values.securityContext.runAsUser | default 10001 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "payplane-lib.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser | default 10001 }}
runAsGroup: {{ .Values.securityContext.runAsUser | default 10001 }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The CloudNativePG cluster of this chart's database, and the Secret it writes for the app. */}}
{{- define "payplane-lib.dbCluster" -}}
{{- printf "%s-db" .Values.database.name -}}
{{- end -}}

{{/* Pod labels other NetworkPolicies select a component's pods by. */}}
{{- define "payplane-lib.peer" -}}
podSelector:
  matchLabels:
    app.kubernetes.io/name: {{ . }}
{{- end -}}

{{/* Labels of the database objects: their own name, so no Service or policy of the service
itself ever selects database pods (should the operator propagate labels). */}}
{{- define "payplane-lib.dbLabels" -}}
helm.sh/chart: {{ include "payplane-lib.chart" . }}
app.kubernetes.io/name: {{ include "payplane-lib.dbCluster" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: payplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
A Secret of random values made once per release and kept: on upgrade the values already in the
cluster are reused (lookup), and "keep" leaves it in place on uninstall so a reinstall finds the
data it encrypted. (dict "root" $ "name" NAME "keys" (dict KEY (dict "prefix" P "kind" "base64"|"alnum")))
Adding a key (e.g. one more caller's signing key) is one more entry in "keys".
*/}}
{{- define "payplane-lib.generatedSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- $data := dict -}}
{{- if $existing }}{{- $data = $existing.data | default dict -}}{{- end -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  labels:
    {{- include "payplane-lib.labels" .root | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
type: Opaque
data:
  {{- range $key, $spec := .keys }}
  {{- if hasKey $data $key }}
  {{ $key }}: {{ index $data $key }}
  {{- else if eq ($spec.kind | default "alnum") "base64" }}
  {{ $key }}: {{ printf "%s%s" ($spec.prefix | default "") (randBytes 32) | b64enc }}
  {{- else }}
  {{ $key }}: {{ printf "%s%s" ($spec.prefix | default "") (randAlphaNum 48) | b64enc }}
  {{- end }}
  {{- end }}
{{- end -}}

{{/*
An Ed25519 key pair as payplane_core.internal_auth encodes keys (32 raw bytes, unpadded
base64url): "<private> <public>". Helm has no function for the public half, so it is read out of
a self-signed certificate made with the key (its SubjectPublicKeyInfo follows a fixed 12-byte
Ed25519 prefix); the seed is the last 32 bytes of the PKCS#8 document. tests/charts proves the
public half is the one Python derives.
*/}}
{{- define "payplane-lib.ed25519Pair" -}}
{{- $pem := genPrivateKey "ed25519" -}}
{{- $der := $pem | replace "-----BEGIN PRIVATE KEY-----" "" | replace "-----END PRIVATE KEY-----" "" | nospace | b64dec -}}
{{- $cert := genSelfSignedCertWithKey "payplane-internal" nil nil 1 $pem -}}
{{- $certDer := $cert.Cert | replace "-----BEGIN CERTIFICATE-----" "" | replace "-----END CERTIFICATE-----" "" | nospace | b64dec -}}
{{- $public := substr 0 32 (index (splitList ("MCowBQYDK2VwAyEA" | b64dec) $certDer) 1) -}}
{{- printf "%s %s" (include "payplane-lib.b64url" (substr 16 48 $der)) (include "payplane-lib.b64url" $public) -}}
{{- end -}}

{{- define "payplane-lib.b64url" -}}
{{- . | b64enc | replace "+" "-" | replace "/" "_" | trimSuffix "=" -}}
{{- end -}}
