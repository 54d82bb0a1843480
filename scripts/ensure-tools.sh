#!/usr/bin/env bash
# Makes sure the real Prometheus tools the tests use are installed: prometheus + promtool and
# prometheus-alertmanager + amtool (Debian packages). Installs them when missing and we are root;
# otherwise says exactly what to run and fails.
set -euo pipefail

needed=(/usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager /usr/bin/amtool)
missing=()
for tool in "${needed[@]}"; do
  [ -x "$tool" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure-tools: missing ${missing[*]}; installing Debian packages prometheus prometheus-alertmanager" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-tools: not root. Run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends prometheus prometheus-alertmanager" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: apt-get not found; install Prometheus >= 2.42 and Alertmanager >= 0.25 so that" >&2
  echo "  ${needed[*]} exist, then run make test again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager; } >&2; then
  echo "ensure-tools: apt-get could not install prometheus prometheus-alertmanager (see above)." >&2
  exit 1
fi
for tool in "${needed[@]}"; do
  [ -x "$tool" ] || { echo "ensure-tools: $tool still missing after install" >&2; exit 1; }
done
