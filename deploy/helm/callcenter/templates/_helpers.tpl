{{/* The services this chart runs, in the order their objects are rendered. */}}
{{- define "callcenter.serviceNames" -}}
gateway voice_pipeline conversation tools post_call
{{- end -}}

{{- define "callcenter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "callcenter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "callcenter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* DNS-1123 form of a service name: voice_pipeline -> voice-pipeline. */}}
{{- define "callcenter.componentName" -}}
{{- . | replace "_" "-" -}}
{{- end -}}

{{/* Name of one service's objects. Args: dict "root" $ "name" "<service>". */}}
{{- define "callcenter.componentFullname" -}}
{{- printf "%s-%s" (include "callcenter.fullname" .root) (include "callcenter.componentName" .name) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "callcenter.labels" -}}
helm.sh/chart: {{ include "callcenter.chart" . }}
app.kubernetes.io/name: {{ include "callcenter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: callcenter
{{- end -}}

{{/* Args: dict "root" $ "name" "<service>". */}}
{{- define "callcenter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "callcenter.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ include "callcenter.componentName" .name }}
{{- end -}}

{{- define "callcenter.componentLabels" -}}
{{ include "callcenter.labels" .root }}
app.kubernetes.io/component: {{ include "callcenter.componentName" .name }}
{{- end -}}

{{/*
Deep merge that lets the override set false, 0, "" and null (sprig's merge/mergeOverwrite skip
such values). Args: dict "base" <map> "over" <map>. Returns YAML.
*/}}
{{- define "callcenter.deepMerge" -}}
{{- $out := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- $current := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (include "callcenter.deepMerge" (dict "base" $current "over" $value) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
One service's effective values: `defaults` with the service's own block merged over it; extraEnv
is the concatenation of both. Args: dict "root" $ "name" "<service>". Returns YAML.
*/}}
{{- define "callcenter.serviceValues" -}}
{{- $own := index .root.Values .name | default dict -}}
{{- $merged := include "callcenter.deepMerge" (dict "base" .root.Values.defaults "over" $own) | fromYaml -}}
{{- $env := concat (.root.Values.defaults.extraEnv | default list) ($own.extraEnv | default list) -}}
{{- $_ := set $merged "extraEnv" $env -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "callcenter.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* Args: dict "root" $ "name" "<service>" "svc" <effective values>. */}}
{{- define "callcenter.image" -}}
{{- $image := .svc.image | default dict -}}
{{- $repository := $image.repository | default (printf "%s/%s%s" .root.Values.image.registry .root.Values.image.repositoryPrefix (include "callcenter.componentName" .name)) -}}
{{- printf "%s:%s" $repository ($image.tag | default (include "callcenter.imageTag" .root)) -}}
{{- end -}}

{{- define "callcenter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "callcenter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret with provider keys: the one named, or the one this chart creates; empty if none. */}}
{{- define "callcenter.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else if .Values.secrets.values -}}
{{- printf "%s-secrets" (include "callcenter.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Full name an upstream chart gives its objects. Args: dict "root" $ "chart" "<name>". */}}
{{- define "callcenter.dependencyFullname" -}}
{{- $values := index .root.Values .chart | default dict -}}
{{- if $values.fullnameOverride -}}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .chart .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name .chart | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "callcenter.publicBaseUrl" -}}
{{- if .Values.publicBaseUrl -}}
{{- .Values.publicBaseUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
{{- printf "https://%s" .Values.ingress.host -}}
{{- end -}}
{{- end -}}

{{- define "callcenter.publicWsUrl" -}}
{{- if .Values.publicWsUrl -}}
{{- .Values.publicWsUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
{{- printf "wss://%s/twilio/media" .Values.ingress.host -}}
{{- end -}}
{{- end -}}

{{/*
Environment shared by every Callcenter container: where NATS, Redis and PostgreSQL are, the
config file, the secrets directory, telemetry and public URLs. Order matters: a variable used as
$(VAR) must come before the one that uses it.
*/}}
{{- define "callcenter.commonEnv" -}}
- name: CALLCENTER_CONFIG
  value: /etc/callcenter/config.yaml
{{- if include "callcenter.secretName" . }}
- name: CALLCENTER_SECRETS_DIR
  value: /var/run/secrets/callcenter
{{- end }}
- name: LOG_FORMAT
  value: json
{{- if .Values.nats.enabled }}
- name: NATS_URL
  value: {{ printf "nats://%s:4222" (include "callcenter.dependencyFullname" (dict "root" . "chart" "nats")) | quote }}
{{- else }}
- name: NATS_URL
  value: {{ .Values.externalNats.url | quote }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $redis := include "callcenter.dependencyFullname" (dict "root" . "chart" "redis") }}
{{- if .Values.redis.auth.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret | default $redis }}
      key: {{ .Values.redis.auth.existingSecretPasswordKey | default "redis-password" }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s-master:6379/0" $redis | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "redis://%s-master:6379/0" $redis | quote }}
{{- end }}
{{- else if .Values.externalRedis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
{{- else }}
- name: REDIS_URL
  value: {{ .Values.externalRedis.url | quote }}
{{- end }}
{{- if .Values.postgresql.enabled }}
{{- $pg := include "callcenter.dependencyFullname" (dict "root" . "chart" "postgresql") }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgresql.auth.existingSecret | default $pg }}
      key: {{ ((.Values.postgresql.auth.secretKeys | default dict).userPasswordKey) | default "password" }}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s:$(DATABASE_PASSWORD)@%s:5432/%s" .Values.postgresql.auth.username $pg .Values.postgresql.auth.database | quote }}
{{- else if .Values.externalDatabase.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalDatabase.existingSecret }}
      key: {{ .Values.externalDatabase.existingSecretKey }}
{{- else }}
- name: DATABASE_URL
  value: {{ .Values.externalDatabase.url | quote }}
{{- end }}
{{- with .Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with include "callcenter.publicBaseUrl" . }}
- name: PUBLIC_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- with include "callcenter.publicWsUrl" . }}
- name: CALLCENTER_VOICE_PIPELINE__PUBLIC_WS_URL
  value: {{ . | quote }}
{{- end }}
{{- $secret := include "callcenter.secretName" . }}
{{- if $secret }}
{{- range .Values.secrets.envKeys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Where a service listens: the config keys for host and port differ by service. */}}
{{- define "callcenter.listenEnv" -}}
{{- $section := upper .name -}}
{{- if has .name (list "gateway" "voice_pipeline") }}
- name: CALLCENTER_{{ $section }}__HOST
  value: "0.0.0.0"
- name: CALLCENTER_{{ $section }}__PORT
  value: {{ .port | int | toString | quote }}
{{- else }}
- name: CALLCENTER_{{ $section }}__HEALTH_HOST
  value: "0.0.0.0"
- name: CALLCENTER_{{ $section }}__HEALTH_PORT
  value: {{ .port | int | toString | quote }}
{{- end }}
{{- end -}}

{{- define "callcenter.configChecksum" -}}
{{- include "callcenter.configYaml" . | sha256sum -}}
{{- end -}}

{{/* config.yaml (files/config.yaml is the repository's config.yaml) with .Values.config merged over it. */}}
{{- define "callcenter.configYaml" -}}
{{- $base := .Files.Get "files/config.yaml" | fromYaml -}}
{{- include "callcenter.deepMerge" (dict "base" $base "over" (.Values.config | default dict)) -}}
{{- end -}}
