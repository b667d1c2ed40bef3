{{/* Names, labels and references shared by the templates. */}}

{{- define "crm-enlace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "crm-enlace.fullname" -}}
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

{{- define "crm-enlace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crm-enlace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "crm-enlace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "crm-enlace.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: node
crm-enlace/country: {{ .Values.node.country | lower | quote }}
{{- end }}

{{- define "crm-enlace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crm-enlace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "crm-enlace.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "crm-enlace.keysSecret" -}}
{{- default (printf "%s-keys" (include "crm-enlace.fullname" .)) .Values.keys.existingSecret }}
{{- end }}

{{- define "crm-enlace.directoryConfigMap" -}}
{{- default (printf "%s-directory" (include "crm-enlace.fullname" .)) .Values.directory.existingConfigMap }}
{{- end }}

{{/* The health probe: exec of the mTLS health command, or a bare TCP connect. */}}
{{- define "crm-enlace.probe" -}}
{{- if eq .Values.probes.type "exec" }}
exec:
  command:
    {{- toYaml .Values.probes.command | nindent 4 }}
{{- else }}
tcpSocket:
  port: grpc
{{- end }}
{{- end }}

{{/* Refuse value combinations the node cannot run with. */}}
{{- define "crm-enlace.validate" -}}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if not .Values.database.existingSecret }}
{{- fail "replicaCount > 1 needs PostgreSQL (database.existingSecret): a SQLite node is one process" }}
{{- end }}
{{- if not .Values.persistence.enabled }}
{{- fail "replicaCount > 1 needs persistence.enabled: the replicas share one home volume" }}
{{- end }}
{{- if not (or .Values.persistence.existingClaim (has "ReadWriteMany" .Values.persistence.accessModes)) }}
{{- fail "replicaCount > 1 needs a ReadWriteMany home volume (persistence.accessModes) or an existingClaim that allows it" }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.node.port)) }}
{{- fail "metrics.port must differ from node.port" }}
{{- end }}
{{- end }}
