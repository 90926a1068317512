{{/* Name of the operator's objects; cluster-scoped ones too, so one release per cluster. */}}
{{- define "enclave-operator.fullname" -}}
{{- if hasSuffix "operator" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* No app.kubernetes.io/part-of here: the operator watches objects carrying it. */}}
{{- define "enclave-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{ include "enclave-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "enclave-operator.selectorLabels" -}}
app.kubernetes.io/name: enclave-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "enclave-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret holding the CAS TLS certificate; enclavectl derives the same name. */}}
{{- define "enclave-operator.casTLSSecret" -}}
{{- printf "cas-%s-tls" .Values.services.cas.name }}
{{- end }}

{{/* Resource names that only an SGX device plugin provides. */}}
{{- define "enclave-operator.sgxResourceNames" -}}
- sgx.intel.com/epc
- sgx.intel.com/enclave
- sgx.intel.com/provision
- kubernetes.azure.com/sgx_epc_mem_in_MiB
- alibabacloud.com/sgx_epc_MiB
- sgx.k8s.io/sgx
{{- end }}

{{/* The SGX limits of one enclave, in the units of the configured plugin. */}}
{{- define "enclave-operator.sgxLimits" -}}
{{- $key := .Values.sgx.resourceKey }}
{{- if .Values.sgx.limits }}
{{- toYaml .Values.sgx.limits }}
{{- else if eq $key "sgx.intel.com/epc" }}
sgx.intel.com/epc: 10Mi
sgx.intel.com/enclave: 1
sgx.intel.com/provision: 1
{{- else if has $key (list "kubernetes.azure.com/sgx_epc_mem_in_MiB" "alibabacloud.com/sgx_epc_MiB") }}
{{ $key }}: 10
{{- else }}
{{ $key }}: 1
{{- end }}
{{- end }}

{{/*
The spec of a service resource: the user's spec plus the image, the pull settings, the
namespace and SGX node selector of the per-node kinds and the SGX limits of enclaves;
simulation removes every SGX resource, also one the user wrote.
Arguments: root (the chart context), service (values of services.<x>), namespaced, enclave.
*/}}
{{- define "enclave-operator.serviceSpec" -}}
{{- $root := .root }}
{{- $spec := deepCopy (.service.spec | default dict) }}
{{- if not (hasKey $spec "image") }}
{{- $_ := set $spec "image" (include "enclave-operator.image" $root) }}
{{- end }}
{{- if not (hasKey $spec "imagePullPolicy") }}
{{- $_ := set $spec "imagePullPolicy" $root.Values.image.pullPolicy }}
{{- end }}
{{- if and $root.Values.imagePullSecrets (not (hasKey $spec "imagePullSecrets")) }}
{{- $_ := set $spec "imagePullSecrets" $root.Values.imagePullSecrets }}
{{- end }}
{{- if and (not .namespaced) (not (hasKey $spec "namespace")) }}
{{- $_ := set $spec "namespace" $root.Release.Namespace }}
{{- end }}
{{- $resources := get $spec "resources" | default dict }}
{{- if $root.Values.simulation }}
{{- $sgx := include "enclave-operator.sgxResourceNames" $root | fromYamlArray }}
{{- range $part := list "requests" "limits" }}
{{- $amounts := get $resources $part }}
{{- if $amounts }}
{{- range $sgx }}
{{- $_ := unset $amounts . }}
{{- end }}
{{- end }}
{{- end }}
{{- else if .enclave }}
{{- $limits := get $resources "limits" | default dict }}
{{- range $name, $amount := include "enclave-operator.sgxLimits" $root | fromYaml }}
{{- if not (hasKey $limits $name) }}
{{- $_ := set $limits $name $amount }}
{{- end }}
{{- end }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
{{- if and (not $root.Values.simulation) (not .namespaced) $root.Values.sgx.nodeSelector (not (hasKey $spec "nodeSelector")) }}
{{- $_ := set $spec "nodeSelector" $root.Values.sgx.nodeSelector }}
{{- end }}
{{- if $resources }}
{{- $_ := set $spec "resources" $resources }}
{{- end }}
{{- /* SGX node pools are commonly tainted with the SGX resource's name: enclaves tolerate
that taint once (no duplicate of one the user wrote); simulation drops such tolerations. */}}
{{- $sgxNames := include "enclave-operator.sgxResourceNames" $root | fromYamlArray }}
{{- $tolerations := list }}
{{- range (get $spec "tolerations" | default list) }}
{{- if not (and $root.Values.simulation (has (.key | default "") $sgxNames)) }}
{{- $tolerations = append $tolerations . }}
{{- end }}
{{- end }}
{{- $key := $root.Values.sgx.resourceKey | default "" }}
{{- if and (not $root.Values.simulation) .enclave $key }}
{{- $present := false }}
{{- range $tolerations }}{{ if eq (.key | default "") $key }}{{ $present = true }}{{ end }}{{ end }}
{{- if not $present }}
{{- $tolerations = append $tolerations (dict "key" $key "operator" "Exists" "effect" "NoSchedule") }}
{{- end }}
{{- end }}
{{- if $tolerations }}
{{- $_ := set $spec "tolerations" $tolerations }}
{{- else }}
{{- $_ := unset $spec "tolerations" }}
{{- end }}
{{- toYaml $spec }}
{{- end }}
