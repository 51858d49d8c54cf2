{{/*
The platform manifest's ports (payplane_core.platform.COMPONENTS), the single copy the charts
read: each component's container port, Service port and the <NAME>_URL other services get.
tests/charts/test_platform.py fails when this and payplane_core.platform disagree.
*/}}
{{- define "payplane-lib.ports" -}}
payments: 8101
merchants: 8102
gateway: 8103
providers: 8104
webhooks: 8105
relay: 8111
notifier: 8112
sim-a: 8201
sim-b: 8202
envoy: 8080
{{- end -}}

{{/* Envoy's admin port: loopback only inside the pod, never in a Service or a probe. */}}
{{- define "payplane-lib.ingressAdminPort" -}}9901{{- end -}}

{{- define "payplane-lib.port" -}}
{{- $ports := include "payplane-lib.ports" . | fromYaml -}}
{{- required (printf "component %q is not in the platform manifest" .Values.component) (index $ports .Values.component) -}}
{{- end -}}

{{- define "payplane-lib.url" -}}
{{- $ports := include "payplane-lib.ports" .root | fromYaml -}}
{{- printf "http://%s:%v" .name (required (printf "unknown component %q" .name) (index $ports .name)) -}}
{{- end -}}
