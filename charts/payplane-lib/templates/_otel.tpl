{{- /* OpenTelemetry: global.otel.endpoint (the OTLP/HTTP base URL every component exports traces
to) and global.otel.sampleRatio (the share of traces recorded, decided by Envoy for the requests
it starts and followed by the services). */}}

{{- /* global.otel.endpoint without a trailing slash ("" when unset). */}}
{{- define "payplane-lib.otlpEndpoint" -}}
{{- $endpoint := trimSuffix "/" (.Values.global.otel.endpoint | default "") -}}
{{- if and $endpoint (not (has (urlParse $endpoint).scheme (list "http" "https"))) -}}
{{- fail (printf "global.otel.endpoint: an http:// or https:// OTLP endpoint, not %q" $endpoint) -}}
{{- end -}}
{{- $endpoint -}}
{{- end -}}

{{- /* The collector's port: the endpoint's own, else its scheme's (80, 443). */}}
{{- define "payplane-lib.otlpPort" -}}
{{- $url := urlParse (include "payplane-lib.otlpEndpoint" .) -}}
{{- $hostPort := splitList ":" $url.host -}}
{{- eq (len $hostPort) 2 | ternary (last $hostPort) (eq $url.scheme "https" | ternary "443" "80") -}}
{{- end -}}

{{- /* An egress rule to the trace collector (wherever it runs), on its OTLP port only; nothing
without an endpoint. */}}
{{- define "payplane-lib.otlpEgress" -}}
{{- if include "payplane-lib.otlpEndpoint" . }}
- ports:
    - {port: {{ include "payplane-lib.otlpPort" . }}, protocol: TCP}
{{- end }}
{{- end -}}

{{- /* global.otel.sampleRatio (0 to 1; unset: 0.1), checked. */}}
{{- define "payplane-lib.otelSampleRatio" -}}
{{- $ratio := .Values.global.otel.sampleRatio -}}
{{- $ratio = kindIs "invalid" $ratio | ternary 0.1 $ratio -}}
{{- if or (lt (float64 $ratio) 0.0) (gt (float64 $ratio) 1.0) -}}
{{- fail (printf "global.otel.sampleRatio: a share of traces from 0 to 1, not %v" $ratio) -}}
{{- end -}}
{{- $ratio -}}
{{- end -}}

{{- /* The same ratio as Envoy's random_sampling percentage, rounded as payplane_ingress does. */}}
{{- define "payplane-lib.otelSamplePercent" -}}
{{- round (mulf (include "payplane-lib.otelSampleRatio" .) 100) 4 -}}
{{- end -}}

{{- /* The SDK's sampler, for the traces a component starts itself (parent-based: a request from
Envoy keeps Envoy's decision). The operator reads the same to render Envoy's rate. */}}
{{- define "payplane-lib.otelSamplerEnv" -}}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ include "payplane-lib.otelSampleRatio" . | quote }}
{{- end -}}
