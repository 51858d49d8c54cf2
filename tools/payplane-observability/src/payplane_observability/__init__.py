"""Dashboards (Grafana JSON) and alert/recording rules (Prometheus rule files) as code.

``python -m payplane_observability`` writes ``charts/payplane/dashboards/*.json`` and
``charts/payplane/rules/*.yaml``; ``--check`` fails when the files and this source disagree.
"""
