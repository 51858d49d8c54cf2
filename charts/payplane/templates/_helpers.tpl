{{/* The umbrella's own objects (platform Secret, Redis, RabbitMQ, policies, monitoring). */}}
{{- define "payplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: payplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "payplane.redisSelectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A DNS-1123 name from a file name: rules/payments_slo.yaml -> payments-slo. */}}
{{- define "payplane.fileObjectName" -}}
{{- base . | trimSuffix (ext .) | lower | replace "_" "-" | replace "." "-" | trunc 50 | trimSuffix "-" -}}
{{- end -}}
