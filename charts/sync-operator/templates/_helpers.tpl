{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sync-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name alone when it already contains the chart
name (so `helm install sync-operator .` gives "sync-operator", not a doubled name).
*/}}
{{- define "sync-operator.fullname" -}}
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

{{- define "sync-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object the chart renders. */}}
{{- define "sync-operator.labels" -}}
helm.sh/chart: {{ include "sync-operator.chart" . }}
{{ include "sync-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sync-operator
{{- end }}

{{/* The immutable subset a Deployment selects its pods by. */}}
{{- define "sync-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sync-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's pods (not the migration Job's): Deployment, PDB, Services. */}}
{{- define "sync-operator.podSelectorLabels" -}}
{{ include "sync-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "sync-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sync-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where SyncJobs and SyncSchedules are watched, and the default schedules live. */}}
{{- define "sync-operator.workNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}

{{- define "sync-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "sync-operator.runnerImage" -}}
{{- printf "%s:%s" .Values.runner.image.repository (default .Chart.AppVersion .Values.runner.image.tag) }}
{{- end }}

{{/* The webhook Service, and the host name kopf puts into the webhook URLs. */}}
{{- define "sync-operator.webhookService" -}}
{{- printf "%s-webhook" (include "sync-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sync-operator.webhookHost" -}}
{{- printf "%s.%s.svc" (include "sync-operator.webhookService" .) .Release.Namespace }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "sync-operator.webhookSecret" -}}
{{- default (printf "%s-webhook-tls" (include "sync-operator.fullname" .)) .Values.webhook.tls.existingSecret }}
{{- end }}
