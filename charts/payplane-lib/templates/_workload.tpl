{{/* Probes on the service's own endpoints: /health is liveness, /ready checks dependencies. */}}
{{- define "payplane-lib.probes" -}}
startupProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}

{{- define "payplane-lib.topologySpread" -}}
{{- if .Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "payplane-lib.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "payplane-lib.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/*
Migrations: an init container in every replica runs `alembic upgrade head` under a PostgreSQL
advisory lock (payplane_core.migrations). Chosen over a Helm hook Job because the database is a
CloudNativePG Cluster created by the same release: a pre-install hook would run before it exists,
and a post-install hook after pods that already need the schema. With the lock, replicas starting
together, or old and new pods during a rolling upgrade, migrate once and the others wait, then
find the schema at head. It always connects to the primary directly (never through PgBouncer in
transaction mode, which cannot hold a session lock).
*/}}
{{- define "payplane-lib.migrationsContainer" -}}
- name: migrate
  image: {{ include "payplane-lib.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["alembic", "-c", "alembic.ini", "upgrade", "head"]
  workingDir: {{ printf "/app/services/%s" .Values.migrations.folder }}
  env:
    {{- include "payplane-lib.databaseEnv" (dict "env" "DATABASE_URL" "database" .Values.database.name "pooler" false) | nindent 4 }}
    - name: PYTHONDONTWRITEBYTECODE
      value: "1"
  resources:
    {{- toYaml .Values.migrations.resources | nindent 4 }}
  securityContext:
    {{- include "payplane-lib.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    - {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "payplane-lib.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  selector:
    matchLabels:
      {{- include "payplane-lib.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "payplane-lib.labels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "payplane-lib.name" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "payplane-lib.podSecurityContext" . | nindent 8 }}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      {{- include "payplane-lib.topologySpread" . | nindent 6 }}
      {{- if and .Values.database.enabled .Values.migrations.enabled }}
      initContainers:
        {{- include "payplane-lib.migrationsContainer" . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "payplane-lib.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ include "payplane-lib.port" . }}
              protocol: TCP
          env:
            {{- include "payplane-lib.env" . | nindent 12 }}
          {{- include "payplane-lib.probes" . | nindent 10 }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- include "payplane-lib.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
{{- end -}}

{{- define "payplane-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "payplane-lib.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ include "payplane-lib.port" . }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{- define "payplane-lib.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{/* A PDB whenever more than one replica runs (one replica: a PDB would only block drains). */}}
{{- define "payplane-lib.pdb" -}}
{{- if or (.Values.autoscaling | default dict).enabled (gt (int .Values.replicaCount) 1) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "payplane-lib.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "payplane-lib.hpa" -}}
{{- if .Values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "payplane-lib.name" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}}
{{- end }}
{{- end -}}

{{- define "payplane-lib.serviceMonitor" -}}
{{- if .Values.global.monitoring.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "payplane-lib.name" . }}
  labels:
    {{- include "payplane-lib.labels" . | nindent 4 }}
    {{- with .Values.global.monitoring.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "payplane-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ .Values.global.monitoring.interval }}
{{- end }}
{{- end -}}
