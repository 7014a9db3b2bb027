#!/usr/bin/env bash
# Install the system services the tests and `make run` need, only where missing.
#
#   scripts/ensure-system-deps.sh [redis] [postgres] [chromium]   (default: all three)
#
# Idempotent: when everything asked for is present it only reports so, and it runs
# `apt-get update` at most once, and only when something has to be installed.
set -euo pipefail

log() { printf 'ensure-system-deps: %s\n' "$*" >&2; }

have_redis() { command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]]; }

have_postgres() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]] && return 0
    done
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && return 0
    fi
    return 1
}

have_chromium() { [[ -x /usr/bin/chromium ]]; }

# Arabic-capable fonts so screenshots of Arabic pages render glyphs, not boxes.
have_fonts() { dpkg-query -W -f='${Status}' fonts-noto-core 2>/dev/null | grep -q 'ok installed'; }

wanted=("$@")
if [[ ${#wanted[@]} -eq 0 ]]; then
    wanted=(redis postgres chromium)
fi

packages=()
for dep in "${wanted[@]}"; do
    case "$dep" in
        redis)
            if have_redis; then log "redis-server: present"; else packages+=(redis-server); fi
            ;;
        postgres | postgresql)
            if have_postgres; then log "postgresql server: present"; else packages+=(postgresql); fi
            ;;
        chromium)
            if have_chromium; then log "chromium: present"; else packages+=(chromium); fi
            if have_fonts; then log "fonts-noto-core: present"; else packages+=(fonts-noto-core); fi
            ;;
        *)
            log "unknown dependency '$dep' (expected: redis postgres chromium)"
            exit 2
            ;;
    esac
done

if [[ ${#packages[@]} -eq 0 ]]; then
    log "nothing to install"
    exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo_cmd=(sudo -n)
    else
        log "need root or sudo to install: ${packages[*]}"
        exit 1
    fi
fi

log "installing: ${packages[*]}"
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${packages[@]}"

# Debian's postgresql package creates and starts a system cluster; the tests start
# their own throwaway servers, so the packaged one is left as the package set it up.
log "installed: ${packages[*]}"
