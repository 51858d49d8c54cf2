{{/*
The service's own PostgreSQL, run by CloudNativePG. The operator creates the database and its
owner (bootstrap.initdb) and writes the connection into the Secret <cluster>-app, which the
Deployment reads (key "uri"); no database password is ever a chart value.
*/}}
{{- define "payplane-lib.cnpgCluster" -}}
{{- $db := .Values.database -}}
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: {{ include "payplane-lib.dbCluster" . }}
  labels:
    {{- include "payplane-lib.dbLabels" . | nindent 4 }}
spec:
  instances: {{ $db.instances }}
  imageName: {{ $db.imageName }}
  primaryUpdateStrategy: unsupervised
  enableSuperuserAccess: false
  bootstrap:
    initdb:
      database: {{ $db.name }}
      owner: {{ $db.name }}
  postgresql:
    parameters:
      {{- toYaml $db.parameters | nindent 6 }}
  storage:
    size: {{ $db.storage.size }}
    {{- with $db.storage.storageClass }}
    storageClass: {{ . }}
    {{- end }}
  resources:
    {{- toYaml $db.resources | nindent 4 }}
  monitoring:
    enablePodMonitor: {{ .Values.global.monitoring.enabled }}
  {{- if $db.backup.enabled }}
  backup:
    retentionPolicy: {{ $db.backup.retentionPolicy | quote }}
    barmanObjectStore:
      destinationPath: {{ required "database.backup.destinationPath is required when backups are on" $db.backup.destinationPath | quote }}
      {{- with $db.backup.endpointURL }}
      endpointURL: {{ . | quote }}
      {{- end }}
      s3Credentials:
        accessKeyId:
          name: {{ required "database.backup.credentialsSecret is required when backups are on" $db.backup.credentialsSecret }}
          key: ACCESS_KEY_ID
        secretAccessKey:
          name: {{ $db.backup.credentialsSecret }}
          key: ACCESS_SECRET_KEY
      wal:
        compression: gzip
  {{- end }}
{{- end -}}

{{- define "payplane-lib.cnpgScheduledBackup" -}}
{{- if .Values.database.backup.enabled }}
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata:
  name: {{ include "payplane-lib.dbCluster" . }}
  labels:
    {{- include "payplane-lib.dbLabels" . | nindent 4 }}
spec:
  schedule: {{ .Values.database.backup.schedule | quote }}
  backupOwnerReference: self
  cluster:
    name: {{ include "payplane-lib.dbCluster" . }}
{{- end }}
{{- end -}}

{{/*
PgBouncer in transaction mode in front of the primary (global.databasePooler.enabled). asyncpg
prepares statements; PgBouncer >= 1.21 tracks them per server connection when
max_prepared_statements is set, so the services need no change behind it.
*/}}
{{- define "payplane-lib.cnpgPooler" -}}
{{- $pooler := .Values.global.databasePooler -}}
{{- if $pooler.enabled }}
apiVersion: postgresql.cnpg.io/v1
kind: Pooler
metadata:
  name: {{ include "payplane-lib.dbCluster" . }}-pooler-rw
  labels:
    {{- include "payplane-lib.dbLabels" . | nindent 4 }}
spec:
  cluster:
    name: {{ include "payplane-lib.dbCluster" . }}
  instances: {{ $pooler.instances }}
  type: rw
  pgbouncer:
    poolMode: transaction
    parameters:
      max_client_conn: {{ $pooler.maxClientConnections | quote }}
      default_pool_size: {{ $pooler.defaultPoolSize | quote }}
      max_prepared_statements: "200"
  monitoring:
    enablePodMonitor: {{ .Values.global.monitoring.enabled }}
{{- end }}
{{- end -}}

{{/* Database pods accept the service (and its pooler), their own peers, the CloudNativePG
operator and Prometheus; they reach each other and the Kubernetes API (and object storage). */}}
{{- define "payplane-lib.databaseNetworkPolicy" -}}
{{- $cluster := include "payplane-lib.dbCluster" . -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $cluster }}
  labels:
    {{- include "payplane-lib.dbLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels: {cnpg.io/cluster: {{ $cluster }}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        {{- range (prepend .Values.database.readers .Values.component) }}
        - {{- include "payplane-lib.peer" . | nindent 10 }}
        {{- end }}
        - podSelector:
            matchLabels: {cnpg.io/cluster: {{ $cluster }}}
        - podSelector:
            matchLabels: {cnpg.io/poolerName: {{ $cluster }}-pooler-rw}
      ports:
        - {port: 5432, protocol: TCP}
    - from:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: {{ .Values.global.cnpgOperatorNamespace }}}
      ports:
        - {port: 8000, protocol: TCP}
        - {port: 5432, protocol: TCP}
    - from:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: {{ .Values.global.monitoring.namespace }}}
      ports:
        - {port: 9187, protocol: TCP}
  egress:
    {{- include "payplane-lib.dnsEgress" . | nindent 4 }}
    - to:
        - podSelector:
            matchLabels: {cnpg.io/cluster: {{ $cluster }}}
      ports:
        - {port: 5432, protocol: TCP}
        - {port: 8000, protocol: TCP}
    # The Kubernetes API (instance manager) and, with backups, the object store.
    - ports:
        - {port: 443, protocol: TCP}
        - {port: 6443, protocol: TCP}
{{- end -}}

{{- define "payplane-lib.poolerNetworkPolicy" -}}
{{- if .Values.global.databasePooler.enabled }}
{{- $cluster := include "payplane-lib.dbCluster" . -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $cluster }}-pooler-rw
  labels:
    {{- include "payplane-lib.dbLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels: {cnpg.io/poolerName: {{ $cluster }}-pooler-rw}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        {{- range (prepend .Values.database.readers .Values.component) }}
        - {{- include "payplane-lib.peer" . | nindent 10 }}
        {{- end }}
      ports:
        - {port: 5432, protocol: TCP}
    - from:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: {{ .Values.global.cnpgOperatorNamespace }}}
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: {{ .Values.global.monitoring.namespace }}}
      ports:
        - {port: 8000, protocol: TCP}
        - {port: 9127, protocol: TCP}
  egress:
    {{- include "payplane-lib.dnsEgress" . | nindent 4 }}
    - to:
        - podSelector:
            matchLabels: {cnpg.io/cluster: {{ $cluster }}}
      ports:
        - {port: 5432, protocol: TCP}
    - ports:
        - {port: 443, protocol: TCP}
        - {port: 6443, protocol: TCP}
{{- end }}
{{- end -}}
