"""Monitoring as code for llmopt-exporter: the recording and alerting rules, the Grafana dashboards,
the Kubernetes PrometheusRule, the metrics catalog and the runbooks, all rendered from the metric
declarations of ``app.metrics``, the recorded series of ``mixin.recorded`` and the thresholds of
``alerts/config.yml`` by ``make generate``. Nothing here runs in the service."""
