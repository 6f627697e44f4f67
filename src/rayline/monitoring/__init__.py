"""Monitoring: workflow metrics from the metadata store, dashboard and rule query checks.

The Prometheus server, its configuration and rules live under ``deploy/prometheus/``
and the Grafana dashboards under ``deploy/grafana/``; the Cluster Manager writes the
``file_sd`` targets (`rayline.clusters.prometheus_sd`).
"""
