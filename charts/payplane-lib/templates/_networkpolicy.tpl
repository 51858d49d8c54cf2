{{/*
One NetworkPolicy per component, on top of the umbrella's default deny. Ingress: only from the
components in .Values.networkPolicy.from on the service port, and from Prometheus's namespace.
Egress: DNS, the components it calls (.Values.connections.services), its database(s), Redis and
RabbitMQ when it uses them, the trace collector's port when global.otel.endpoint is set (every
component exports spans), and .Values.networkPolicy.extraEgress (external endpoints).
*/}}
{{- define "payplane-lib.dnsEgress" -}}
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels: {k8s-app: kube-dns}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{- define "payplane-lib.databaseEgress" -}}
- to:
    - podSelector:
        matchLabels: {cnpg.io/cluster: {{ printf "%s-db" .database }}}
    {{- if .pooler }}
    - podSelector:
        matchLabels: {cnpg.io/poolerName: {{ printf "%s-db-pooler-rw" .database }}}
    {{- end }}
  ports:
    - {port: 5432, protocol: TCP}
{{- end -}}

{{- define "payplane-lib.monitoringIngress" -}}
- from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: {{ .Values.global.monitoring.namespace }}}
  ports:
    - {port: {{ .port }}, protocol: TCP}
{{- end -}}

{{- define "payplane-lib.networkPolicy" -}}
{{- $global := .Values.global -}}
{{- $ports := include "payplane-lib.ports" . | fromYaml -}}
{{- $port := include "payplane-lib.port" . -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "payplane-lib.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- with .Values.networkPolicy.from }}
    - from:
        {{- range . }}
        - {{- include "payplane-lib.peer" . | nindent 10 }}
        {{- end }}
      ports:
        - {port: {{ $port }}, protocol: TCP}
    {{- end }}
    - from:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: {{ $global.monitoring.namespace }}}
      ports:
        - {port: {{ $port }}, protocol: TCP}
  egress:
    {{- include "payplane-lib.dnsEgress" . | nindent 4 }}
    {{- range .Values.connections.services }}
    - to:
        - {{- include "payplane-lib.peer" . | nindent 10 }}
      ports:
        - {port: {{ index $ports . }}, protocol: TCP}
    {{- end }}
    {{- if .Values.database.enabled }}
    {{- include "payplane-lib.databaseEgress" (dict "database" .Values.database.name "pooler" $global.databasePooler.enabled) | nindent 4 }}
    {{- end }}
    {{- range .Values.readsDatabases }}
    {{- include "payplane-lib.databaseEgress" (dict "database" .database "pooler" $global.databasePooler.enabled) | nindent 4 }}
    {{- end }}
    {{- if .Values.connections.redis }}
    - to:
        - {{- include "payplane-lib.peer" "redis" | nindent 10 }}
      ports:
        - {port: 6379, protocol: TCP}
    {{- end }}
    {{- if .Values.connections.amqp }}
    - to:
        - {{- include "payplane-lib.peer" $global.rabbitmq.name | nindent 10 }}
      ports:
        - {port: 5672, protocol: TCP}
    {{- end }}
    {{- include "payplane-lib.otlpEgress" . | nindent 4 }}
    {{- with .Values.networkPolicy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
