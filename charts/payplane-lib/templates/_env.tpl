{{/*
A service's environment: only Settings its class knows (tests/charts proves it), secrets only by
reference to a Secret, never as a value.
  - ENVIRONMENT/SERVICE_NAME/HOST/PORT;
  - the internal signature: its own Ed25519 key (INTERNAL_SIGNING_KEY) when it calls others,
    and the public keys of the callers it accepts (INTERNAL_CALLER_KEYS);
  - ENCRYPTION_KEYS when .Values.connections.encryptionKeys;
  - REDIS_URL / AMQP_URL when .Values.connections.redis / .amqp;
  - <NAME>_URL for every component in .Values.connections.services;
  - the database URL(s) from CloudNativePG's <cluster>-app Secret (through the Pooler when it is
    enabled, except for a readsDatabases entry with direct: true, e.g. a LISTEN session);
  - OTEL_* for tracing (endpoint, global.otel.sampleRatio as a parent-based sampler); .Values.settings for plain tuning values.
Variables whose names start with "_" exist only to build another one through $(VAR) expansion.
*/}}
{{- define "payplane-lib.databaseEnv" -}}
{{- $cluster := printf "%s-db" .database -}}
{{- if .pooler }}
- name: _{{ .env }}_USER
  valueFrom: {secretKeyRef: {name: {{ $cluster }}-app, key: username}}
- name: _{{ .env }}_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ $cluster }}-app, key: password}}
- name: _{{ .env }}_NAME
  valueFrom: {secretKeyRef: {name: {{ $cluster }}-app, key: dbname}}
- name: {{ .env }}
  value: "postgresql://$(_{{ .env }}_USER):$(_{{ .env }}_PASSWORD)@{{ $cluster }}-pooler-rw:5432/$(_{{ .env }}_NAME)"
{{- else }}
- name: {{ .env }}
  valueFrom: {secretKeyRef: {name: {{ $cluster }}-app, key: uri}}
{{- end }}
{{- end -}}

{{- define "payplane-lib.internalKeysEnv" -}}
{{- $secret := .Values.global.internalKeys.secretName -}}
{{- if .Values.connections.internalCaller }}
- name: INTERNAL_SIGNING_KEY
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ include "payplane-lib.name" . }}.key}}
{{- end }}
{{- with .Values.internalCallers }}
{{- range $caller := . }}
- name: _CALLER_KEY_{{ $caller | upper | replace "-" "_" }}
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $caller }}.pub}}
{{- end }}
- name: INTERNAL_CALLER_KEYS
  value: {{ $entries := list }}{{ range $caller := . }}{{ $entries = append $entries (printf "%s:$(_CALLER_KEY_%s)" $caller ($caller | upper | replace "-" "_")) }}{{ end }}{{ join "," $entries | quote }}
{{- end }}
{{- end -}}

{{- define "payplane-lib.env" -}}
{{- $global := .Values.global -}}
{{- $conn := .Values.connections -}}
- name: ENVIRONMENT
  value: {{ $global.environment | quote }}
- name: SERVICE_NAME
  value: {{ include "payplane-lib.name" . | quote }}
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: {{ include "payplane-lib.port" . | quote }}
{{- include "payplane-lib.internalKeysEnv" . }}
{{- if $conn.encryptionKeys }}
- name: ENCRYPTION_KEYS
  valueFrom: {secretKeyRef: {name: {{ $global.platformSecret.name }}, key: ENCRYPTION_KEYS}}
{{- end }}
{{- if $conn.redis }}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ $global.redis.secretName }}, key: url}}
{{- end }}
{{- if $conn.amqp }}
- name: _AMQP_USERNAME
  valueFrom: {secretKeyRef: {name: {{ $global.rabbitmq.name }}-default-user, key: username}}
- name: _AMQP_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ $global.rabbitmq.name }}-default-user, key: password}}
- name: AMQP_URL
  value: "amqp://$(_AMQP_USERNAME):$(_AMQP_PASSWORD)@{{ $global.rabbitmq.name }}:5672/"
{{- end }}
{{- range $name := $conn.services }}
- name: {{ $name | upper | replace "-" "_" }}_URL
  value: {{ include "payplane-lib.url" (dict "root" $ "name" $name) | quote }}
{{- end }}
{{- if .Values.database.enabled }}
{{- include "payplane-lib.databaseEnv" (dict "env" .Values.database.env "database" .Values.database.name "pooler" $global.databasePooler.enabled) }}
{{- end }}
{{- range .Values.readsDatabases }}
{{- include "payplane-lib.databaseEnv" (dict "env" .env "database" .database "pooler" (and $global.databasePooler.enabled (not .direct))) }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ include "payplane-lib.name" . | quote }}
{{- with $global.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- include "payplane-lib.otelSamplerEnv" $ | nindent 0 }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom: {secretKeyRef: {name: {{ tpl .secret $ }}, key: {{ .key }}}}
{{- end }}
{{- range $key, $value := .Values.settings }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
