{{/* Names, labels and the pod parts every component shares. */}}

{{- define "harmony.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "harmony.fullname" -}}
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

{{/* A component's resource name: "<fullname>-<component>", within 63 characters. */}}
{{- define "harmony.componentName" -}}
{{- printf "%s-%s" (include "harmony.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component }}
{{- end }}

{{- define "harmony.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "harmony.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: harmony
{{- end }}

{{/* Labels of one component: call with (dict "root" $ "component" "operator"). */}}
{{- define "harmony.componentLabels" -}}
{{ include "harmony.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "harmony.selectorLabels" -}}
app.kubernetes.io/name: {{ include "harmony.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "harmony.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "harmony.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "harmony.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "harmony.apiTokensSecret" -}}
{{- default (include "harmony.componentName" (dict "root" . "component" "api-tokens")) .Values.api.auth.existingSecret }}
{{- end }}

{{/* The worker runs only with a broker: Redis configured and the worker not switched off. */}}
{{- define "harmony.workerEnabled" -}}
{{- if and .Values.worker.enabled .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{/* HARMONY_* settings every container reads; secrets only by reference. */}}
{{- define "harmony.env" -}}
- name: HARMONY_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
{{- if .Values.redis.existingSecret }}
- name: HARMONY_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.urlKey }}
{{- end }}
{{- if .Values.prometheus.url }}
- name: HARMONY_PROMETHEUS_URL
  value: {{ .Values.prometheus.url | quote }}
{{- end }}
- name: HARMONY_LOG_LEVEL
  value: {{ .Values.logging.level | quote }}
- name: HARMONY_LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
- name: HARMONY_RETENTION_DAYS
  value: {{ .Values.retentionDays | quote }}
- name: HARMONY_DATA_DIR
  value: /tmp/harmony
- name: HARMONY_MODEL_DIR
  value: /var/cache/harmony/models
- name: XDG_CACHE_HOME
  value: /tmp/.cache
{{- end }}

{{- define "harmony.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "harmony.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The root filesystem is read-only: /tmp and the model cache are the writable places. */}}
{{- define "harmony.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: model-cache
  mountPath: /var/cache/harmony/models
{{- end }}

{{- define "harmony.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: model-cache
  emptyDir:
    sizeLimit: {{ .Values.modelCacheSizeLimit }}
{{- end }}

{{/* Pod spec parts for one component: call with (dict "root" $ "spec" .Values.api). */}}
{{- define "harmony.scheduling" -}}
{{- with .spec.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .spec.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .spec.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
