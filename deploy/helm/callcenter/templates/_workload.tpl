{{/*
The objects every service has. templates/<service>/{deployment,service,hpa,pdb}.yaml each call
one of these with: dict "root" $ "name" "<service>".
*/}}

{{- define "callcenter.deployment" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $svc := include "callcenter.serviceValues" . | fromYaml -}}
{{- if $svc.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "callcenter.componentFullname" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "callcenter.componentLabels" . | nindent 4 }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicas | int }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "callcenter.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "callcenter.selectorLabels" . | nindent 8 }}
        {{- with $svc.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "callcenter.configChecksum" $root }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "callcenter.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds | int }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $svc.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ include "callcenter.componentName" $name }}
          image: {{ include "callcenter.image" (dict "root" $root "name" $name "svc" $svc) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "-m", "callcenter.{{ $name }}"]
          ports:
            - name: http
              containerPort: {{ $svc.port | int }}
              protocol: TCP
          env:
            - name: CC_SERVICE
              value: {{ $name | quote }}
            {{- include "callcenter.listenEnv" (dict "name" $name "port" $svc.port) | trim | nindent 12 }}
            {{- include "callcenter.commonEnv" $root | nindent 12 }}
            {{- with $svc.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $svc.livenessProbe.periodSeconds | int }}
            timeoutSeconds: {{ $svc.livenessProbe.timeoutSeconds | int }}
            failureThreshold: {{ $svc.livenessProbe.failureThreshold | int }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ $svc.readinessProbe.periodSeconds | int }}
            timeoutSeconds: {{ $svc.readinessProbe.timeoutSeconds | int }}
            failureThreshold: {{ $svc.readinessProbe.failureThreshold | int }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $svc.startupProbe.periodSeconds | int }}
            timeoutSeconds: {{ $svc.startupProbe.timeoutSeconds | int }}
            failureThreshold: {{ $svc.startupProbe.failureThreshold | int }}
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "{{ $svc.preStopSleepSeconds | int }}"]
          {{- with $svc.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $svc.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: config
              mountPath: /etc/callcenter
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- if include "callcenter.secretName" $root }}
            - name: secrets
              mountPath: /var/run/secrets/callcenter
              readOnly: true
            {{- end }}
            {{- with $svc.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "callcenter.fullname" $root }}-config
        - name: tmp
          emptyDir: {}
        {{- with include "callcenter.secretName" $root }}
        - name: secrets
          secret:
            secretName: {{ . }}
        {{- end }}
        {{- with $svc.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $svc.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end -}}

{{- define "callcenter.service" -}}
{{- $svc := include "callcenter.serviceValues" . | fromYaml -}}
{{- if $svc.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "callcenter.componentFullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "callcenter.componentLabels" . | nindent 4 }}
  {{- with $svc.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $svc.service.type }}
  selector:
    {{- include "callcenter.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $svc.port | int }}
      targetPort: http
      protocol: TCP
{{- end }}
{{- end -}}

{{- define "callcenter.hpa" -}}
{{- $svc := include "callcenter.serviceValues" . | fromYaml -}}
{{- if and $svc.enabled $svc.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "callcenter.componentFullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "callcenter.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "callcenter.componentFullname" . }}
  minReplicas: {{ $svc.autoscaling.minReplicas | int }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas | int }}
  metrics:
    {{- with $svc.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . | int }}
    {{- end }}
    {{- with $svc.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . | int }}
    {{- end }}
    {{- range $svc.autoscaling.podMetrics }}
    - type: Pods
      pods:
        metric:
          name: {{ .name }}
        target:
          type: AverageValue
          averageValue: {{ .averageValue | quote }}
    {{- end }}
  {{- with $svc.autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "callcenter.pdb" -}}
{{- $svc := include "callcenter.serviceValues" . | fromYaml -}}
{{- if and $svc.enabled $svc.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "callcenter.componentFullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "callcenter.componentLabels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $svc.pdb.minAvailable) }}
  minAvailable: {{ $svc.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $svc.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "callcenter.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
