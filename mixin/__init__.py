"""Monitoring as code for llmopt-exporter: the recording and alerting rules, the Grafana dashboards,
the Kubernetes PrometheusRule and the metrics catalog, all rendered from the metric declarations of
``app.metrics`` and the thresholds of ``alerts/config.yml``. Nothing here runs in the service."""
