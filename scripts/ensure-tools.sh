#!/usr/bin/env bash
# Makes sure the real tools the tests use are installed:
#   - prometheus + promtool and prometheus-alertmanager + amtool (Debian packages);
#   - docker-compose, to validate docker-compose.yml (Debian package; no Docker engine is needed);
#   - Node.js and, in grafana/.schema-check/node_modules, the exact TypeScript and @grafana/schema of
#     grafana/.schema-check/package-lock.json, to type-check the dashboards against Grafana's schema.
# Installs what is missing when we are root; otherwise says exactly what to run and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=(/usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager /usr/bin/amtool)
packages=()
for tool in "${needed[@]}"; do
  if [ ! -x "$tool" ]; then
    packages+=(prometheus prometheus-alertmanager)
    break
  fi
done
command -v docker-compose >/dev/null 2>&1 || packages+=(docker-compose)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

if [ ${#packages[@]} -gt 0 ]; then
  echo "ensure-tools: installing Debian packages ${packages[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-tools: not root. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${packages[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: apt-get not found; install Prometheus >= 2.42, Alertmanager >= 0.25, docker-compose" >&2
    echo "  and Node.js >= 18 so that ${needed[*]}, docker-compose and node exist, then run make test again." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >&2; then
    echo "ensure-tools: apt-get could not install ${packages[*]} (see above)." >&2
    exit 1
  fi
  for tool in "${needed[@]}" docker-compose node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ensure-tools: $tool still missing after install" >&2; exit 1; }
  done
fi

# The npm packages of the dashboard schema check, reinstalled whenever the lock file changes.
schema_check=grafana/.schema-check
stamp="$schema_check/node_modules/.installed-from-package-lock.json"
if ! cmp -s "$schema_check/package-lock.json" "$stamp"; then
  echo "ensure-tools: installing $schema_check/node_modules (npm ci)" >&2
  if ! (cd "$schema_check" && npm ci --no-audit --no-fund --loglevel=error) >&2; then
    echo "ensure-tools: npm ci failed in $schema_check (see above)." >&2
    exit 1
  fi
  cp "$schema_check/package-lock.json" "$stamp"
fi
