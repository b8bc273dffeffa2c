#!/usr/bin/env bash
# Prints every metric name the dashboards and alert rules use, one per line,
# sorted: the metric family as the worker registers it (a histogram's
# _bucket/_sum/_count series count as the histogram). Prometheus' own `up`
# is left out. Refresh the list with:
#   deploy/list-metrics.sh > deploy/metricnames.txt
set -euo pipefail
cd "$(dirname "$0")"
grep -ohE '\b(campaign_ingest|process|go)_[a-z0-9_]*[a-z0-9]' \
    grafana/dashboards/*.json prometheus/alerts.yaml |
  sed -E 's/_(bucket|sum|count)$//' |
  LC_ALL=C sort -u
