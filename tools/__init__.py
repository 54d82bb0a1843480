"""Tools around the exporter, none of which runs in the service: the traffic simulator and the
incident-context report, which talk to the exporter and Prometheus over HTTP only, and the generator
of the repository's rendered files (``python -m tools.generate``)."""
