{{/* Labels of every object; the operator's watches select on app.kubernetes.io/part-of. */}}
{{- define "sgxplugin.labels" -}}
{{ include "sgxplugin.selectorLabels" . }}
app.kubernetes.io/part-of: enclave-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The immutable subset used in selectors. */}}
{{- define "sgxplugin.selectorLabels" -}}
app.kubernetes.io/name: sgx-plugin
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Pod-level settings shared by every chart of enclave-operator. */}}
{{- define "sgxplugin.podSettings" -}}
{{- with .Values.imagePullSecret }}
imagePullSecrets:
  - name: {{ . | quote }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container-level settings shared by every chart of enclave-operator. */}}
{{- define "sgxplugin.containerSettings" -}}
image: {{ .Values.image | quote }}
imagePullPolicy: {{ .Values.imagePullPolicy }}
resources:
  {{- toYaml (.Values.resources | default dict) | nindent 2 }}
{{- end }}

{{/* Name of the cluster-scoped objects: the namespace too, since two namespaces may hold a
release of the same name. */}}
{{- define "sgxplugin.clusterName" -}}
{{ printf "enclave-%s-%s" .Release.Namespace .Release.Name | trunc 253 }}
{{- end }}

{{/* The CR as controller owner (values.owner, set by the operator): objects are owned from
their creation, with no patch after the install. */}}
{{- define "sgxplugin.ownerReferences" -}}
{{- with .Values.owner }}
ownerReferences:
  - apiVersion: {{ .apiVersion | quote }}
    kind: {{ .kind | quote }}
    name: {{ .name | quote }}
    uid: {{ .uid | quote }}
    controller: true
    blockOwnerDeletion: true
{{- end }}
{{- end }}
