{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "robodm-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: <release>-<chart> unless the release name already contains it. */}}
{{- define "robodm-operator.fullname" -}}
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

{{- define "robodm-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "robodm-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "robodm-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "robodm-operator.labels" -}}
helm.sh/chart: {{ include "robodm-operator.chart" . }}
{{ include "robodm-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "robodm-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "robodm-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "robodm-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "robodm-operator.engineImage" -}}
{{- printf "%s:%s" .Values.engine.image.repository (default .Chart.AppVersion .Values.engine.image.tag) }}
{{- end }}

{{/* Fail early on values the operator would reject at start-up. */}}
{{- define "robodm-operator.validateValues" -}}
{{- if not (kindIs "slice" .Values.watchNamespaces) }}
{{- fail "watchNamespaces must be a list of namespace names ([] for all namespaces)" }}
{{- end }}
{{- if not (has (upper .Values.logLevel) (list "DEBUG" "INFO" "WARNING" "ERROR")) }}
{{- fail (printf "logLevel must be DEBUG, INFO, WARNING or ERROR, got %v" .Values.logLevel) }}
{{- end }}
{{- if le (float64 .Values.pollInterval) 0.0 }}
{{- fail "pollInterval must be a positive number of seconds" }}
{{- end }}
{{- end }}

{{/*
RBAC rules: exactly the API calls of robodm_operator (handlers.py, kube.py) and of kopf as it
is configured there (no peering, no CRD scanning). Shared by the ClusterRole and the
per-namespace Roles.
*/}}
{{- define "robodm-operator.rules" -}}
# kopf lists and watches IngestionJobs and patches them (its finalizer and handler-progress
# annotations); each reconciliation re-reads its job with get.
- apiGroups: [robodm.io]
  resources: [ingestionjobs]
  verbs: [get, list, watch, patch]
# Phase, conditions and progress are written through the status subresource.
- apiGroups: [robodm.io]
  resources: [ingestionjobs/status]
  verbs: [patch]
# Children carry ownerReferences with blockOwnerDeletion; the OwnerReferencesPermissionEnforcement
# admission plugin allows that only to those who may update the owner's finalizers.
- apiGroups: [robodm.io]
  resources: [ingestionjobs/finalizers]
  verbs: [update]
# One RayCluster per job: read to follow readiness, created on start, deleted when the job ends.
- apiGroups: [ray.io]
  resources: [rayclusters]
  verbs: [get, create, delete]
# One engine Job per attempt: read to follow its outcome, created per attempt, deleted on a
# deadline or when the IngestionJob is deleted.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, create, delete]
# The job file mounted into the engine; removed by garbage collection with its owner.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create]
# S3 keys for reading the engine's progress file, from the Secret named in spec.storage
# (get only: no list or watch, so the operator cannot enumerate Secrets).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# kopf reports handler failures (e.g. an invalid spec) as Events on the IngestionJob.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
