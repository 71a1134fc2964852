{{/*
The chart's name (nameOverride wins), at most 63 characters.
*/}}
{{- define "wafleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: the release name, with the chart name unless the
release name already contains it. Truncated so that "<fullname>-connector-NN" pod names
and "data-<fullname>-connector-NN" claims stay within the limits.
*/}}
{{- define "wafleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"name-version" for the helm.sh/chart label.
*/}}
{{- define "wafleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The namespace of every namespaced object.
*/}}
{{- define "wafleet.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component: stable across upgrades (no versions).
Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "wafleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wafleet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/*
All labels of an object. Call with (dict "ctx" $ "component" "api"); component may be empty
for objects shared by the whole release.
*/}}
{{- define "wafleet.labels" -}}
helm.sh/chart: {{ include "wafleet.chart" .ctx }}
{{ include "wafleet.selectorLabels" . }}
app.kubernetes.io/part-of: wafleet
{{- with .ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of a component's pods: no chart version, so that a chart-only change does not
restart them (the image tag, i.e. app.kubernetes.io/version, does).
Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "wafleet.podLabels" -}}
{{ include "wafleet.selectorLabels" . }}
app.kubernetes.io/part-of: wafleet
{{- with .ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The metadata block shared by every namespaced object: name, namespace, labels, annotations.
Call with (dict "ctx" $ "component" "api" "name" "x" "annotations" (dict ...)).
*/}}
{{- define "wafleet.metadata" -}}
name: {{ .name }}
namespace: {{ include "wafleet.namespace" .ctx }}
labels:
  {{- include "wafleet.labels" . | nindent 2 }}
{{- $annotations := merge (dict) (.annotations | default (dict)) (.ctx.Values.commonAnnotations | default (dict)) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
"<fullname>-<component>": the name of a component's objects.
*/}}
{{- define "wafleet.componentName" -}}
{{- printf "%s-%s" (include "wafleet.fullname" .ctx) .component }}
{{- end }}

{{/*
The connector StatefulSet's name (the operator scales it, the connectors derive their
shard from "<it>-<ordinal>").
*/}}
{{- define "wafleet.connectorName" -}}
{{- include "wafleet.componentName" (dict "ctx" . "component" "connector") }}
{{- end }}

{{/*
The ServiceAccount of a component. Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "wafleet.serviceAccountName" -}}
{{- $sa := (index .ctx.Values .component).serviceAccount }}
{{- if $sa.create }}
{{- default (include "wafleet.componentName" .) $sa.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name is required when %s.serviceAccount.create is false" .component .component) $sa.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "wafleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Pod and container security contexts: the global ones with a component's keys merged over.
Call with (dict "ctx" $ "component" "api"); sim and the test pod use the global ones.
*/}}
{{- define "wafleet.podSecurityContext" -}}
{{- $own := dict }}
{{- with .component }}{{ $own = (index $.ctx.Values .).podSecurityContext | default (dict) }}{{ end }}
{{- toYaml (mergeOverwrite (deepCopy .ctx.Values.podSecurityContext) (deepCopy $own)) }}
{{- end }}

{{- define "wafleet.containerSecurityContext" -}}
{{- $own := dict }}
{{- with .component }}{{ $own = (index $.ctx.Values .).securityContext | default (dict) }}{{ end }}
{{- toYaml (mergeOverwrite (deepCopy .ctx.Values.containerSecurityContext) (deepCopy $own)) }}
{{- end }}

{{/*
Names of the Secrets the chart reads.
*/}}
{{- define "wafleet.adminSecretName" -}}
{{- default (include "wafleet.componentName" (dict "ctx" . "component" "admin")) .Values.api.adminToken.existingSecret }}
{{- end }}

{{- define "wafleet.linkSecretName" -}}
{{- default (include "wafleet.adminSecretName" .) .Values.api.linkKey.existingSecret }}
{{- end }}

{{- define "wafleet.backupSecretName" -}}
{{- default (include "wafleet.componentName" (dict "ctx" . "component" "backup-key")) .Values.sessionBackup.existingSecret }}
{{- end }}

{{- define "wafleet.backupEnabled" -}}
{{- if or .Values.sessionBackup.existingSecret .Values.sessionBackup.create }}true{{ end }}
{{- end }}

{{/*
The KopfPeering object's name.
*/}}
{{- define "wafleet.peeringName" -}}
{{- default (include "wafleet.fullname" .) .Values.operator.peeringName }}
{{- end }}

{{/*
The shard bounds the operator uses: SQLite keeps the fleet on one shard (one volume).
*/}}
{{- define "wafleet.maxShards" -}}
{{- if eq .Values.store "sqlite" }}1{{ else }}{{ .Values.sharding.maxShards }}{{ end }}
{{- end }}

{{- define "wafleet.minShards" -}}
{{- if eq .Values.store "sqlite" }}1{{ else }}{{ .Values.sharding.minShards }}{{ end }}
{{- end }}

{{/*
The most shards a WhatsAppFleet object may ask for (WAFLEET_SHARD_LIMIT): the connectors'
Role names a shard Lease for each ordinal below it. With store: sqlite, 1.
*/}}
{{- define "wafleet.shardLimit" -}}
{{- if eq .Values.store "sqlite" }}1
{{- else if gt (int .Values.sharding.shardLimit) 0 }}{{ .Values.sharding.shardLimit }}
{{- else }}{{ .Values.sharding.maxShards }}{{ end }}
{{- end }}

{{/*
How sessions move between shards (sharding.drain, .rebalance, .failover, .moves): the
operator's defaults, and the fleet object's spec that the bootstrap writes (same names).
*/}}
{{- define "wafleet.mobilityEnv" -}}
{{- $sharding := .Values.sharding }}
- name: WAFLEET_DRAIN
  value: {{ $sharding.drain | toJson | quote }}
- name: WAFLEET_REBALANCE
  value: {{ $sharding.rebalance.enabled | quote }}
- name: WAFLEET_REBALANCE_MAX_SKEW
  value: {{ $sharding.rebalance.maxSkew | quote }}
- name: WAFLEET_CONSOLIDATE
  value: {{ $sharding.rebalance.consolidate | quote }}
- name: WAFLEET_FAILOVER
  value: {{ $sharding.failover.enabled | quote }}
- name: WAFLEET_FAILOVER_AFTER
  value: {{ $sharding.failover.after | quote }}
- name: WAFLEET_MOVE_CONCURRENCY
  value: {{ $sharding.moves.concurrency | quote }}
- name: WAFLEET_MOVE_TIMEOUT
  value: {{ $sharding.moves.timeout | quote }}
{{- end }}

{{/*
The name of the chart's WhatsAppFleet object.
*/}}
{{- define "wafleet.fleetName" -}}
{{- default (include "wafleet.fullname" .) .Values.fleet.name }}
{{- end }}

{{/*
WAFLEET_SIM_URL: the chart's simulator, or config.simUrl.
*/}}
{{- define "wafleet.simUrl" -}}
{{- if .Values.config.simUrl }}
{{- .Values.config.simUrl }}
{{- else if .Values.sim.enabled }}
{{- printf "http://%s.%s.svc:%v" (include "wafleet.componentName" (dict "ctx" . "component" "sim")) (include "wafleet.namespace" .) .Values.sim.port }}
{{- end }}
{{- end }}

{{/*
A Kubernetes memory quantity in MiB (a float printed in full, e.g. "1907.3486328125"):
plain bytes ("1073741824", or 1.073741824e+09 as a values file's number), an exponent
("1e9"), a decimal suffix (k, M, G, T, P, E; m, u, n), a binary one (Ki, Mi, Gi, Ti, Pi,
Ei), with decimals ("1.5Gi"). Call with (dict "quantity" q "name" "the value's path").
*/}}
{{- define "wafleet.memoryMiB" -}}
{{- $quantity := toString .quantity | trim }}
{{- $number := regexFind `^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?` $quantity }}
{{- $suffix := trimPrefix $number $quantity }}
{{- $units := dict
    "" 1 "m" 0.001 "u" 0.000001 "n" 0.000000001
    "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000
    "P" 1000000000000000 "E" 1000000000000000000
    "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776
    "Pi" 1125899906842624 "Ei" 1152921504606846976 }}
{{- if or (not $number) (not (hasKey $units $suffix)) (and (regexMatch "[eE]" $number) $suffix) }}
{{- fail (printf "%s (%q) is not a Kubernetes quantity: use bytes, or a number with a suffix such as Mi, Gi, M or G (e.g. 1Gi, 1.5Gi, 2G, 3000Mi)" .name $quantity) }}
{{- end }}
{{- printf "%v" (divf (mulf (float64 $number) (index $units $suffix)) 1048576) }}
{{- end }}

{{/*
Engine worker processes a full connector shard runs:
ceil(sharding.sessionsPerShard / connector.engine.sessionsPerWorker).
*/}}
{{- define "wafleet.engineWorkers" -}}
{{- $sessions := int .Values.sharding.sessionsPerShard }}
{{- $perWorker := int .Values.connector.engine.sessionsPerWorker }}
{{- div (sub (add $sessions $perWorker) 1) $perWorker }}
{{- end }}

{{/*
WAFLEET_ENGINE_GOMEMLIMIT of the connector (the GOMEMLIMIT of each engine worker), or
nothing. connector.engine.gomemlimit wins; empty, it is derived from the connector's
memory limit: floor(limit_MiB * 70 / 100 / workers) MiB, workers from
"wafleet.engineWorkers" (30% of the limit stays for the connector process and the Python
part of each worker). No memory limit: nothing. Under 64MiB the render fails with
transport neonize (with sim no worker runs: the variable is left out).
*/}}
{{- define "wafleet.engineGomemlimit" -}}
{{- $engine := .Values.connector.engine }}
{{- $limits := (.Values.connector.resources | default dict).limits | default dict }}
{{- if $engine.gomemlimit }}
{{- $engine.gomemlimit }}
{{- else if and (hasKey $limits "memory") (ne (toString $limits.memory) "<nil>") (ne (toString $limits.memory) "") }}
{{- $limitMiB := float64 (include "wafleet.memoryMiB" (dict "quantity" $limits.memory "name" "connector.resources.limits.memory")) }}
{{- $workers := int (include "wafleet.engineWorkers" .) }}
{{- $perWorker := int (floor (divf (mulf $limitMiB 70) (mul 100 $workers))) }}
{{- if ge $perWorker 64 }}
{{- printf "%dMiB" $perWorker }}
{{- else if eq .Values.config.transport "neonize" }}
{{- fail (printf "connector.engine: the GOMEMLIMIT derived for each engine worker is %dMiB, under the 64MiB minimum: 70%% of connector.resources.limits.memory (%v) shared by %d workers (ceil(sharding.sessionsPerShard %v / connector.engine.sessionsPerWorker %v)). Raise connector.resources.limits.memory or connector.engine.sessionsPerWorker, or set connector.engine.gomemlimit" $perWorker $limits.memory $workers .Values.sharding.sessionsPerShard $engine.sessionsPerWorker) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checks across values that the JSON schema cannot express; a failure names the values.
*/}}
{{- define "wafleet.validate" -}}
{{- $grace := int .Values.connector.terminationGracePeriodSeconds }}
{{- $shutdown := float64 .Values.config.shutdownTimeout }}
{{- if lt (float64 $grace) (addf $shutdown 5) }}
{{- fail (printf "connector.terminationGracePeriodSeconds (%d) must be at least config.shutdownTimeout (%v) + 5 s: the connector needs the shutdown time to stop its sessions and flush its journal, plus a few seconds for the HTTP server and the process to exit" $grace .Values.config.shutdownTimeout) }}
{{- end }}
{{- if gt (int .Values.sharding.minShards) (int .Values.sharding.maxShards) }}
{{- fail (printf "sharding.minShards (%v) must not be above sharding.maxShards (%v)" .Values.sharding.minShards .Values.sharding.maxShards) }}
{{- end }}
{{- if and (gt (int .Values.sharding.shardLimit) 0) (lt (int .Values.sharding.shardLimit) (int .Values.sharding.maxShards)) }}
{{- fail (printf "sharding.shardLimit (%v) must be 0 or at least sharding.maxShards (%v)" .Values.sharding.shardLimit .Values.sharding.maxShards) }}
{{- end }}
{{- $sharding := .Values.sharding }}
{{- if and (eq .Values.store "sqlite") (or $sharding.rebalance.enabled $sharding.failover.enabled (gt (len $sharding.drain) 0)) }}
{{- fail "sharding.drain, sharding.rebalance.enabled and sharding.failover.enabled move sessions between shards, which needs store: firestore (and a sessionBackup key): with store: sqlite the whole fleet is one shard" }}
{{- end }}
{{- if lt (float64 .Values.config.backoffMax) (float64 .Values.config.backoffBase) }}
{{- fail (printf "config.backoffMax (%v) must be at least config.backoffBase (%v)" .Values.config.backoffMax .Values.config.backoffBase) }}
{{- end }}
{{- if gt (int .Values.config.linkTtl) (int .Values.config.linkMaxTtl) }}
{{- fail (printf "config.linkTtl (%v) must not be above config.linkMaxTtl (%v)" .Values.config.linkTtl .Values.config.linkMaxTtl) }}
{{- end }}
{{- if and .Values.sessionBackup.existingSecret .Values.sessionBackup.create }}
{{- fail "sessionBackup: set either existingSecret or create: true, not both" }}
{{- end }}
{{- if and .Values.api.adminToken.existingSecret .Values.api.adminToken.create }}
{{- fail "api.adminToken: set either existingSecret or create: true, not both" }}
{{- end }}
{{- if and (eq (include "wafleet.linkSecretName" .) (include "wafleet.adminSecretName" .)) (eq .Values.api.linkKey.key .Values.api.adminToken.key) }}
{{- fail (printf "api.linkKey.key (%s) is the key of the admin token in the same Secret; give the link key its own key, e.g. link-key" .Values.api.linkKey.key) }}
{{- end }}
{{- end }}

{{/*
WAFLEET_NAMESPACE from the pod's namespace (every wafleet container).
*/}}
{{- define "wafleet.namespaceEnv" -}}
- name: WAFLEET_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/*
The message store's credentials (API and connectors only): env, volumes, mounts.
*/}}
{{- define "wafleet.storeEnv" -}}
{{- if and (eq .Values.store "firestore") .Values.firestore.credentials.existingSecret }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: /var/run/secrets/wafleet/firestore/{{ .Values.firestore.credentials.key }}
{{- end }}
{{- end }}

{{- define "wafleet.storeVolumes" -}}
{{- if and (eq .Values.store "firestore") .Values.firestore.credentials.existingSecret }}
- name: firestore-credentials
  secret:
    secretName: {{ .Values.firestore.credentials.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.firestore.credentials.key }}
        path: {{ .Values.firestore.credentials.key }}
{{- end }}
{{- end }}

{{- define "wafleet.storeVolumeMounts" -}}
{{- if and (eq .Values.store "firestore") .Values.firestore.credentials.existingSecret }}
- name: firestore-credentials
  mountPath: /var/run/secrets/wafleet/firestore
  readOnly: true
{{- end }}
{{- end }}

{{/*
The /tmp emptyDir of every pod (the root filesystem is read-only).
*/}}
{{- define "wafleet.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "wafleet.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
The shared ConfigMap as envFrom.
*/}}
{{- define "wafleet.envFrom" -}}
- configMapRef:
    name: {{ include "wafleet.componentName" (dict "ctx" . "component" "config") }}
{{- end }}

{{/*
Pod annotations that restart the pods when the shared configuration changes.
*/}}
{{- define "wafleet.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
The metadata of a monitoring object: "wafleet.metadata" with extra labels (those a
Prometheus or a Grafana sidecar selects by) and, optionally, another namespace.
Call with (dict "ctx" $ "component" "api" "name" "x" "labels" (dict ...) "namespace" "").
*/}}
{{- define "wafleet.monitoringMetadata" -}}
name: {{ .name }}
namespace: {{ default (include "wafleet.namespace" .ctx) .namespace }}
labels:
  {{- include "wafleet.labels" . | nindent 2 }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $annotations := merge (dict) (.annotations | default (dict)) (.ctx.Values.commonAnnotations | default (dict)) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The Secret and key holding the bearer credential Prometheus sends to the API's /metrics:
monitoring.serviceMonitor.apiCredentials, else the admin token's.
*/}}
{{- define "wafleet.metricsSecretName" -}}
{{- default (include "wafleet.adminSecretName" .) .Values.monitoring.serviceMonitor.apiCredentials.existingSecret }}
{{- end }}

{{- define "wafleet.metricsSecretKey" -}}
{{- default .Values.api.adminToken.key .Values.monitoring.serviceMonitor.apiCredentials.key }}
{{- end }}
