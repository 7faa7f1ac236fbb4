{{/*
Helpers for the rag-sidecar chart. The public ones, usable from a parent chart through
`.Subcharts` (see README "Running as a sidecar"), are:
  rag-sidecar.container   the container spec (a YAML mapping, not a list item)
  rag-sidecar.volumes     the pod volumes the container needs (a YAML list)
*/}}

{{- define "rag-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rag-sidecar.fullname" -}}
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

{{/*
The Prometheus job of the ServiceMonitor's targets: the chart name (rag-sidecar), or with a
nameOverride that lacks it, rag-sidecar-NAME, so the alert rules' up{job=~".*rag-sidecar.*"}
still select it.
*/}}
{{- define "rag-sidecar.jobName" -}}
{{- $name := include "rag-sidecar.name" . }}
{{- if contains "rag-sidecar" $name }}{{ $name }}{{ else }}{{ printf "rag-sidecar-%s" $name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{/* A Prometheus duration (30s, 1m, 500ms, 1h: what the schema admits) in milliseconds. */}}
{{- define "rag-sidecar.durationMs" -}}
{{- $d := toString . | trim }}
{{- $n := regexReplaceAll "^0*([0-9]+)[a-z]+$" $d "${1}" | int64 }}
{{- $unit := regexReplaceAll "^[0-9]+" $d "" }}
{{- mul $n (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit | default 0) }}
{{- end }}

{{- define "rag-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rag-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rag-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rag-sidecar.labels" -}}
helm.sh/chart: {{ include "rag-sidecar.chart" . }}
{{ include "rag-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: evaluator
app.kubernetes.io/part-of: rag-sidecar
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "rag-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rag-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rag-sidecar.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the rendered config is mounted and the path passed with --config. */}}
{{- define "rag-sidecar.configDir" -}}/etc/rag-sidecar{{- end }}

{{/* host:port as a URI authority (IPv6 literals in brackets). */}}
{{- define "rag-sidecar.authority" -}}
{{- $host := index . 0 }}
{{- if contains ":" $host }}{{ printf "[%s]:%d" $host (int (index . 1)) }}{{ else }}{{ printf "%s:%d" $host (int (index . 1)) }}{{ end }}
{{- end }}

{{/*
The sidecar's YAML settings: .Values.config plus what the chart owns (the metrics port, the
OTLP receivers' sources, the paths of the mounted Kafka TLS files).
*/}}
{{- define "rag-sidecar.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $sources := list }}
{{- range ($cfg.sources | default list) }}
{{- $sources = append $sources . }}
{{- end }}
{{- range $proto := list "grpc" "http" }}
{{- $rx := index $.Values.otlp $proto }}
{{- if $rx.enabled }}
{{- $sources = append $sources (printf "otlp+%s://%s" $proto (include "rag-sidecar.authority" (list $.Values.otlp.host $rx.port))) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "sources" $sources }}
{{- $http := deepCopy ($cfg.http | default dict) }}
{{- $_ := set $http "host" ($http.host | default "0.0.0.0") }}
{{- $_ := set $http "port" (int .Values.metrics.port) }}
{{- $_ := set $cfg "http" $http }}
{{- with .Values.kafka.tls }}
{{- if .existingSecret }}
{{- $kafka := deepCopy ($cfg.kafka | default dict) }}
{{- if .caKey }}{{ $_ := set $kafka "ssl_cafile" (printf "%s/%s" .mountPath .caKey) }}{{ end }}
{{- if .certKey }}{{ $_ := set $kafka "ssl_certfile" (printf "%s/%s" .mountPath .certKey) }}{{ end }}
{{- if .keyKey }}{{ $_ := set $kafka "ssl_keyfile" (printf "%s/%s" .mountPath .keyKey) }}{{ end }}
{{- $_ := set $cfg "kafka" $kafka }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Seconds a clean shutdown may take, in the order the sidecar closes (sidecar/pipeline.py aclose):
the pipeline's drain (config.pipeline.drain_timeout_s, 30 by default), the feedback joiner's
(config.feedback.shutdown_timeout_s, 10 by default; on unless feedback.enabled is false), the
embeddings tier's when enabled (config.embeddings.shutdown_timeout_s, 10 by default), then the
judges': the primary first, then the others together (its shutdown_timeout_s plus the longest of
the others', 10 each by default).
*/}}
{{- define "rag-sidecar.shutdownSeconds" -}}
{{- $cfg := .Values.config | default dict }}
{{- $pipeline := $cfg.pipeline | default dict }}
{{- $total := hasKey $pipeline "drain_timeout_s" | ternary $pipeline.drain_timeout_s 30 | float64 }}
{{- $feedback := $cfg.feedback | default dict }}
{{- if or (not (hasKey $feedback "enabled")) $feedback.enabled }}
{{- $total = addf $total (hasKey $feedback "shutdown_timeout_s" | ternary $feedback.shutdown_timeout_s 10 | float64) }}
{{- end }}
{{- $embeddings := $cfg.embeddings | default dict }}
{{- if $embeddings.enabled }}
{{- $total = addf $total (hasKey $embeddings "shutdown_timeout_s" | ternary $embeddings.shutdown_timeout_s 10 | float64) }}
{{- end }}
{{- $judges := $cfg.judge }}
{{- if $judges }}
{{- if not (kindIs "slice" $judges) }}{{ $judges = list $judges }}{{ end }}
{{- $primary := 0.0 }}
{{- $others := 0.0 }}
{{- range $judges }}
{{- $s := hasKey . "shutdown_timeout_s" | ternary .shutdown_timeout_s 10 | float64 }}
{{- if eq (.role | default "primary") "primary" }}
{{- $primary = maxf $primary $s }}
{{- else }}
{{- $others = maxf $others $s }}
{{- end }}
{{- end }}
{{- $total = addf $total $primary $others }}
{{- end }}
{{- $total }}
{{- end }}

{{/* Seconds of a preStop sleep action (lifecycle.preStop.sleep.seconds): part of the grace period. */}}
{{- define "rag-sidecar.preStopSeconds" -}}
{{- ((((.Values.lifecycle | default dict).preStop | default dict).sleep | default dict).seconds | default 0) | int }}
{{- end }}

{{/*
The pod's grace period: longer than a preStop sleep plus a clean shutdown (the grace period
counts from before the preStop hook), so SIGKILL never cuts a drain.
*/}}
{{- define "rag-sidecar.terminationGracePeriod" -}}
{{- $needed := addf (include "rag-sidecar.shutdownSeconds" . | float64) (include "rag-sidecar.preStopSeconds" . | float64) }}
{{- $grace := .Values.deployment.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $grace }}
{{- add (ceil $needed | int) 15 }}
{{- else if le (float64 $grace) $needed }}
{{- fail (printf "deployment.terminationGracePeriodSeconds (%v) must exceed config.pipeline.drain_timeout_s plus the feedback, embeddings and judge shutdown_timeout_s and a lifecycle.preStop sleep (%v)" $grace $needed) }}
{{- else }}
{{- int $grace }}
{{- end }}
{{- end }}

{{/*
The first kafka:// source as {bootstrap, topic, group}, for KEDA. A source is
kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC][?group=G|pattern=RE].
*/}}
{{- define "rag-sidecar.kafkaSource" -}}
{{- $out := dict }}
{{- range (.Values.config.sources | default list) }}
{{- if and (not $out.bootstrap) (hasPrefix "kafka://" .) }}
{{- $parts := splitn "?" 2 (trimPrefix "kafka://" .) }}
{{- $hostPath := splitn "/" 2 $parts._0 }}
{{- $_ := set $out "bootstrap" $hostPath._0 }}
{{- $topics := trimAll "/" ($hostPath._1 | default "") }}
{{- if and $topics (not (contains "," $topics)) }}{{ $_ := set $out "topic" $topics }}{{ end }}
{{- $group := regexFind "(^|&)group=[^&]+" ($parts._1 | default "") }}
{{- if $group }}{{ $_ := set $out "group" (regexReplaceAll "^&?group=" $group "") }}{{ end }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* KEDA's sasl value for config.kafka.sasl_mechanism. */}}
{{- define "rag-sidecar.kedaSasl" -}}
{{- $mech := (.Values.config.kafka | default dict).sasl_mechanism | default "PLAIN" }}
{{- get (dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512") $mech | default "plaintext" }}
{{- end }}

{{/* The Kafka security protocol of the config (PLAINTEXT by default). */}}
{{- define "rag-sidecar.kafkaProtocol" -}}
{{- (.Values.config.kafka | default dict).security_protocol | default "PLAINTEXT" }}
{{- end }}

{{/*
The TCP port of a URL, from (list URL DEFAULT): its explicit port, else 443 for https:// and 80
for http://, else DEFAULT (e.g. 4317 for otlp+grpc://). Userinfo, path, query and IPv6
brackets are handled; "" when nothing applies.
*/}}
{{- define "rag-sidecar.urlPort" -}}
{{- $url := index . 0 | toString | trim }}
{{- $default := index . 1 }}
{{- $scheme := "" }}
{{- if contains "://" $url }}
{{- $scheme = regexReplaceAll "://.*$" $url "" | lower }}
{{- $url = regexReplaceAll "^[^/]*://" $url "" }}
{{- end }}
{{- $authority := regexReplaceAll "^[^@/?#]*@" (regexReplaceAll "[/?#].*$" $url "") "" }}
{{- $port := regexReplaceAll "^:0*([0-9])" (regexFind ":[0-9]+$" $authority) "${1}" }}
{{- if $port }}{{ int $port }}
{{- else if eq $scheme "https" }}443
{{- else if eq $scheme "http" }}80
{{- else if $default }}{{ int $default }}
{{- end }}
{{- end }}

{{/*
The egress ports the sidecar's config needs, as JSON {kafka, judge, otlp, review}: lists of
ports, sorted and de-duplicated, for the NetworkPolicy rules whose `ports` is empty.
  kafka   every broker of the kafka:// URIs in config.sources, config.events,
          config.dead_letter and config.review.output (HOST:PORT; 9092 without a port)
  judge   the url of config.judge, or of each judge in a list (the sidecar's default
          http://127.0.0.1:8080/v1 when a judge has none)
  otlp    config.scores_otlp (4318 for otlp+http://, 4317 for otlp+grpc:// without a port)
  review  config.review.label_studio.url
*/}}
{{- define "rag-sidecar.egressPorts" -}}
{{- $cfg := .Values.config | default dict }}
{{- $out := dict "kafka" (list) "judge" (list) "otlp" (list) "review" (list) }}
{{- $review := $cfg.review | default dict }}
{{- $uris := list }}
{{- range ($cfg.sources | default list) }}{{ $uris = append $uris . }}{{ end }}
{{- range (list $cfg.events $cfg.dead_letter $review.output) }}{{ if . }}{{ $uris = append $uris . }}{{ end }}{{ end }}
{{- range $uris }}
{{- $uri := toString . | trim }}
{{- if hasPrefix "kafka://" $uri }}
{{- range (regexReplaceAll "[/?#].*$" (trimPrefix "kafka://" $uri) "" | splitList ",") }}
{{- if . }}
{{- $port := regexReplaceAll "^:0*([0-9])" (regexFind ":[0-9]+$" .) "${1}" | default "9092" }}
{{- $_ := set $out "kafka" (append $out.kafka (printf "%5d" (int $port))) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $judges := $cfg.judge }}
{{- if $judges }}
{{- if not (kindIs "slice" $judges) }}{{ $judges = list $judges }}{{ end }}
{{- range $judges }}
{{- $port := include "rag-sidecar.urlPort" (list ((. | default dict).url | default "http://127.0.0.1:8080/v1") 0) }}
{{- if $port }}{{ $_ := set $out "judge" (append $out.judge (printf "%5d" (int $port))) }}{{ end }}
{{- end }}
{{- end }}
{{- with $cfg.scores_otlp }}
{{- $port := include "rag-sidecar.urlPort" (list . (hasPrefix "otlp+grpc://" (toString .) | ternary 4317 4318)) }}
{{- if $port }}{{ $_ := set $out "otlp" (list (printf "%5d" (int $port))) }}{{ end }}
{{- end }}
{{- with ($review.label_studio | default dict).url }}
{{- $port := include "rag-sidecar.urlPort" (list . 0) }}
{{- if $port }}{{ $_ := set $out "review" (list (printf "%5d" (int $port))) }}{{ end }}
{{- end }}
{{- range $name, $ports := $out }}
{{- $sorted := list }}
{{- range ($ports | uniq | sortAlpha) }}{{ $sorted = append $sorted (trim . | int) }}{{ end }}
{{- $_ := set $out $name $sorted }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Env var naming the key file of judge NAME: RAG_SIDECAR_JUDGE_API_KEY_<NAME>_FILE. */}}
{{- define "rag-sidecar.judgeKeyFileEnv" -}}
{{- printf "RAG_SIDECAR_JUDGE_API_KEY_%s_FILE" (regexReplaceAll "[^A-Z0-9]" (upper .) "_") }}
{{- end }}

{{- define "rag-sidecar.hasJudgeKeys" -}}
{{- if or .Values.judge.apiKey.existingSecret .Values.judge.namedApiKeys }}true{{ end }}
{{- end }}

{{/* The container. Secrets are references only: files or secretKeyRef, never values. */}}
{{- define "rag-sidecar.container" -}}
name: rag-sidecar
image: {{ include "rag-sidecar.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- if and (not .Values.deployment.enabled) .Values.sidecar.native }}
restartPolicy: Always
{{- end }}
args:
  - run
  - --config
  - {{ include "rag-sidecar.configDir" . }}/config.yaml
  {{- range .Values.extraArgs }}
  - {{ . | quote }}
  {{- end }}
ports:
  - name: metrics
    containerPort: {{ .Values.metrics.port }}
    protocol: TCP
  {{- if .Values.otlp.grpc.enabled }}
  - name: otlp-grpc
    containerPort: {{ .Values.otlp.grpc.port }}
    protocol: TCP
  {{- end }}
  {{- if .Values.otlp.http.enabled }}
  - name: otlp-http
    containerPort: {{ .Values.otlp.http.port }}
    protocol: TCP
  {{- end }}
{{- $env := list }}
{{- if .Values.judge.apiKey.existingSecret }}
{{- $env = append $env (dict "name" "RAG_SIDECAR_JUDGE_API_KEY_FILE" "value" (printf "%s/api-key" .Values.judge.mountPath)) }}
{{- end }}
{{- range .Values.judge.namedApiKeys }}
{{- $env = append $env (dict "name" (include "rag-sidecar.judgeKeyFileEnv" .judge) "value" (printf "%s/%s" $.Values.judge.mountPath .judge)) }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if .existingSecret }}
{{- if .usernameKey }}
{{- $env = append $env (dict "name" "RAG_SIDECAR_KAFKA__SASL_USERNAME" "valueFrom" (dict "secretKeyRef" (dict "name" .existingSecret "key" .usernameKey))) }}
{{- end }}
{{- $env = append $env (dict "name" "RAG_SIDECAR_KAFKA__SASL_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" .existingSecret "key" .passwordKey))) }}
{{- end }}
{{- end }}
{{- with .Values.otlp.token }}
{{- if .existingSecret }}
{{- $env = append $env (dict "name" "RAG_SIDECAR_OTLP__TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" .existingSecret "key" .key))) }}
{{- end }}
{{- end }}
{{- $env = concat $env .Values.extraEnv }}
{{- with $env }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.lifecycle }}
lifecycle:
  {{- toYaml . | nindent 2 }}
{{- end }}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  {{- toYaml .Values.livenessProbe | nindent 2 }}
{{- if or .Values.deployment.enabled .Values.sidecar.readinessProbe }}
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  {{- toYaml .Values.readinessProbe | nindent 2 }}
{{- end }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: rag-sidecar-config
    mountPath: {{ include "rag-sidecar.configDir" . }}
    readOnly: true
  - name: rag-sidecar-tmp
    mountPath: /tmp
  - name: rag-sidecar-data
    mountPath: {{ .Values.dataDir.mountPath }}
  {{- if include "rag-sidecar.hasJudgeKeys" . }}
  - name: rag-sidecar-judge
    mountPath: {{ .Values.judge.mountPath }}
    readOnly: true
  {{- end }}
  {{- if .Values.kafka.tls.existingSecret }}
  - name: rag-sidecar-kafka-tls
    mountPath: {{ .Values.kafka.tls.mountPath }}
    readOnly: true
  {{- end }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The pod volumes of the container above. */}}
{{- define "rag-sidecar.volumes" -}}
- name: rag-sidecar-config
  configMap:
    name: {{ include "rag-sidecar.fullname" . }}
- name: rag-sidecar-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpDir.sizeLimit }}
- name: rag-sidecar-data
  {{- if .Values.dataDir.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.dataDir.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ .Values.dataDir.sizeLimit }}
  {{- end }}
{{- if include "rag-sidecar.hasJudgeKeys" . }}
- name: rag-sidecar-judge
  projected:
    defaultMode: 0444
    sources:
      {{- with .Values.judge.apiKey }}
      {{- if .existingSecret }}
      - secret:
          name: {{ .existingSecret }}
          items:
            - key: {{ .key }}
              path: api-key
      {{- end }}
      {{- end }}
      {{- range .Values.judge.namedApiKeys }}
      - secret:
          name: {{ .existingSecret }}
          items:
            - key: {{ .key }}
              path: {{ .judge }}
      {{- end }}
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
- name: rag-sidecar-kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    defaultMode: 0444
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Chart-level checks that the schema cannot express. */}}
{{- define "rag-sidecar.validate" -}}
{{- if and .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}
{{- fail "autoscaling.hpa and autoscaling.keda are exclusive: KEDA creates its own HPA" }}
{{- end }}
{{- if and .Values.autoscaling.hpa.enabled (not (((.Values.resources | default dict).requests | default dict).cpu)) }}
{{- fail "autoscaling.hpa needs resources.requests.cpu (utilisation is a share of it)" }}
{{- end }}
{{- if and (include "rag-sidecar.hasJudgeKeys" .) (not .Values.config.judge) }}
{{- fail "judge.apiKey / judge.namedApiKeys are set but config.judge is not: configure the judge (url, model) under config.judge" }}
{{- end }}
{{- if and .Values.kafka.sasl.existingSecret (not (hasPrefix "SASL" (include "rag-sidecar.kafkaProtocol" .))) }}
{{- fail "kafka.sasl.existingSecret is set but config.kafka.security_protocol is not SASL_PLAINTEXT or SASL_SSL" }}
{{- end }}
{{- if .Values.deployment.enabled }}
{{- $autoscaled := or .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}
{{- if .Values.dataDir.existingClaim }}
{{- /* Every replica writes its own state (drift snapshot, dead letters) to the same paths. */}}
{{- if or $autoscaled (gt (int .Values.deployment.replicas) 1) }}
{{- fail "dataDir.existingClaim holds one replica's state (drift snapshot, file sinks): replicas would overwrite each other's files; use it with deployment.replicas=1 and no autoscaling" }}
{{- end }}
{{- if ne ((.Values.deployment.strategy | default dict).type | default "RollingUpdate") "Recreate" }}
{{- fail "dataDir.existingClaim needs deployment.strategy.type=Recreate: a RollingUpdate starts the new pod while the old one still holds the volume (a ReadWriteOnce claim on another node never attaches, and both pods write the same state files)" }}
{{- end }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if .enabled }}
{{- $replicas := int $.Values.deployment.replicas }}
{{- if $.Values.autoscaling.hpa.enabled }}{{ $replicas = int $.Values.autoscaling.hpa.minReplicas }}{{ end }}
{{- if $.Values.autoscaling.keda.enabled }}{{ $replicas = int $.Values.autoscaling.keda.minReplicas }}{{ end }}
{{- $replicas = max $replicas 1 }}
{{- $evictable := true }}
{{- $rule := "" }}
{{- if not (kindIs "invalid" .minAvailable) }}
{{- $rule = printf "minAvailable %v" .minAvailable }}
{{- $keep := .minAvailable }}
{{- if kindIs "string" $keep }}{{ $keep = ceil (divf (mul (trimSuffix "%" $keep | int) $replicas) 100) }}{{ end }}
{{- $evictable = lt (int $keep) $replicas }}
{{- else if not (kindIs "invalid" .maxUnavailable) }}
{{- $rule = printf "maxUnavailable %v" .maxUnavailable }}
{{- $evictable = gt (toString .maxUnavailable | trimSuffix "%" | int) 0 }}
{{- end }}
{{- if not $evictable }}
{{- fail (printf "podDisruptionBudget %s allows no eviction with %d replica(s) (the minimum when autoscaled): node drains and cluster upgrades would hang; lower it or run more replicas" $rule $replicas) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := include "rag-sidecar.terminationGracePeriod" . }}
{{- end }}
