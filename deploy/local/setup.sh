#!/usr/bin/env bash
# Prepares the no-Docker local stack; idempotent, safe to run on every CI start.
#   1. Kafka broker jars resolved by Maven into ${XIEZUO_CACHE_DIR:-<repo>/.cache}/kafka-libs
#      (skipped when the cache is complete for the current pom).
#   2. PostgreSQL server binaries (initdb, pg_ctl, postgres); apt-installed when root.
# Needs: bash, Java 17+, Maven. Same cache layout and marker as services/runtime/localstack/kafka.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pom="$here/kafka/pom.xml"
cache_root="${XIEZUO_CACHE_DIR:-$repo/.cache}"
libs="$cache_root/kafka-libs"

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

java_bin="java"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then java_bin="$JAVA_HOME/bin/java"; fi
command -v "$java_bin" >/dev/null || die "no java: install a JDK 17+ or set JAVA_HOME"

# --- Kafka jars -----------------------------------------------------------------------------
digest="$(sha256sum "$pom" | cut -d' ' -f1)"
cache_complete() {
    [[ -f "$libs/.complete" && "$(tr -d '[:space:]' <"$libs/.complete")" == "$digest" ]] \
        && compgen -G "$libs/kafka_2.13-*.jar" >/dev/null
}

resolve_kafka() {
    command -v mvn >/dev/null || die "Maven (mvn) not on PATH: apt-get install -y maven"
    local scratch="$cache_root/.kafka-libs.partial-$$"
    rm -rf "$scratch"
    log "resolving Kafka jars with Maven into $libs"
    # Output kept aside: Maven 3.8 prints stray colour codes even with -q; shown on failure.
    local out="$cache_root/.kafka-libs.mvn.log"
    if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$scratch" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        rm -rf "$scratch"
        die "Maven could not resolve the Kafka jars (output above, full log $out)"
    fi
    # Marker last and swap in whole: a half-finished run never looks complete.
    printf '%s\n' "$digest" >"$scratch/.complete"
    rm -rf "$libs"
    mv "$scratch" "$libs"
}

mkdir -p "$cache_root"
if cache_complete; then
    log "Kafka jars already cached in $libs"
else
    # Same lock file as kafka.py, so a test run and this script never resolve at once.
    exec 9>>"$cache_root/.kafka-libs.lock"
    if command -v flock >/dev/null; then flock 9; fi
    cache_complete || resolve_kafka
    exec 9>&-
    log "Kafka jars ready: $(find "$libs" -name '*.jar' | wc -l) jars in $libs"
fi

# --- PostgreSQL server binaries ---------------------------------------------------------------
find_initdb() {
    local newest=""
    newest="$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n1)"
    if [[ -n "${XIEZUO_PG_BINDIR:-}" && -x "$XIEZUO_PG_BINDIR/initdb" ]]; then
        echo "$XIEZUO_PG_BINDIR/initdb"
    elif [[ -n "$newest" ]]; then
        echo "$newest"
    elif command -v initdb >/dev/null; then
        command -v initdb
    fi
}

initdb_path="$(find_initdb)"
if [[ -z "$initdb_path" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        log "PostgreSQL server binaries missing; installing the Debian postgresql package"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        initdb_path="$(find_initdb)"
        [[ -n "$initdb_path" ]] || die "apt installed postgresql but no initdb was found"
    else
        die "PostgreSQL server binaries (initdb) not found; as root run: \
apt-get update && apt-get install -y postgresql (or set XIEZUO_PG_BINDIR)"
    fi
fi
log "PostgreSQL binaries: $(dirname "$initdb_path")"
# The Debian package starts a system cluster on 5432; the stack never uses it (it runs private
# clusters on free ports), so it is left alone here.
