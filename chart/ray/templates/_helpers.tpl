{{/* The sum of maxWorkers over all pod types: the cluster's global maxWorkers (legacy). */}}
{{- define "ray.clusterMaxWorkers" -}}
{{- $total := 0 -}}
{{- range $key, $val := .Values.podTypes -}}
{{- $total = add $total ($val.maxWorkers | default 0) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Where the operator runs: the release namespace when namespaced, else operatorNamespace. */}}
{{- define "ray.operatorNamespace" -}}
{{- if .Values.namespacedOperator -}}{{ .Release.Namespace }}{{- else -}}{{ .Values.operatorNamespace }}{{- end -}}
{{- end -}}

{{/* The install's name in ownership claims: stable across pod restarts, unique per release. */}}
{{- define "ray.installName" -}}
{{- printf "%s.%s" .Release.Name (include "ray.operatorNamespace" .) | trunc 50 | trimSuffix "." | trimSuffix "-" -}}
{{- end -}}

{{- define "ray.operatorLabels" -}}
cluster.ray.io/component: operator
app.kubernetes.io/name: ray-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* Checks a JSON schema cannot express; each failure names the key. */}}
{{- define "ray.validate" -}}
{{- if not (hasKey .Values.podTypes .Values.headPodType) -}}
{{- fail (printf "headPodType: %q names no key of podTypes (expected one of %s)" .Values.headPodType (keys .Values.podTypes | sortAlpha | join ", ")) -}}
{{- end -}}
{{- range $key, $val := .Values.podTypes -}}
{{- if gt (int ($val.minWorkers | default 0)) (int ($val.maxWorkers | default 0)) -}}
{{- fail (printf "podTypes.%s.minWorkers (%v) must not exceed podTypes.%s.maxWorkers (%v)" $key ($val.minWorkers | default 0) $key ($val.maxWorkers | default 0)) -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElection) -}}
{{- fail (printf "operator.replicas: %v replicas need operator.leaderElection=true (else they would all act)" .Values.operator.replicas) -}}
{{- end -}}
{{- end -}}
