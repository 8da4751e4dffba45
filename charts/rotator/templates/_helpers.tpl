{{/* Labels every object carries: the kustomize manifests' (name, part-of) plus Helm's own. */}}
{{- define "rotator.labels" -}}
app.kubernetes.io/name: rotator
{{ include "rotator.partOfLabels" . }}
{{- end }}

{{/* The CRDs' labels: their files name none, kustomize adds part-of. */}}
{{- define "rotator.partOfLabels" -}}
app.kubernetes.io/part-of: rotator
{{ include "rotator.helmLabels" . }}
{{- end }}

{{/* What Helm adds (tests/unit/test_helm_chart.py drops exactly these when comparing). */}}
{{- define "rotator.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The operator pods' selector, as in manifests/base/deployment.yaml. */}}
{{- define "rotator.selector" -}}
app.kubernetes.io/name: rotator
app.kubernetes.io/component: operator
{{- end }}

{{/* The YAML documents of a file under files/ (comment-only documents dropped), as a list. */}}
{{- define "rotator.documents" -}}
{{- $docs := list }}
{{- range regexSplit "(?m)^---[ \t]*$" (.root.Files.Get .file) -1 }}
{{- $doc := fromYaml . }}
{{- if $doc }}{{ $docs = append $docs $doc }}{{ end }}
{{- end }}
{{- toJson $docs }}
{{- end }}

{{/* The rules of the first document of kind .kind in a file under files/. */}}
{{- define "rotator.rules" -}}
{{- $found := list }}
{{- range (include "rotator.documents" (dict "root" .root "file" .file) | fromJsonArray) }}
{{- if and (eq .kind $.kind) (not $found) }}{{ $found = .rules }}{{ end }}
{{- end }}
{{- required (printf "no %s in %s" .kind .file) $found | toYaml }}
{{- end }}

{{- define "rotator.validate" -}}
{{- if not (has .Values.mode (list "cluster" "namespaced")) }}
{{- fail (printf "mode must be cluster or namespaced, not %q" .Values.mode) }}
{{- end }}
{{- if and (eq .Values.mode "namespaced") (not .Values.namespaces) }}
{{- fail "mode=namespaced needs at least one entry in namespaces" }}
{{- end }}
{{- end }}
