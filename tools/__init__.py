"""Tools around a running exporter: the traffic simulator and the incident-context report.
They talk to the exporter and Prometheus over HTTP only; nothing here runs in the service."""
