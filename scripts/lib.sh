# Shared steps of scripts/dev.sh and scripts/test.sh: check or install what
# ecogrid needs on a Debian machine. Sourced, not run.

PG_MAJOR="${PG_MAJOR:-15}"

say() { printf 'ecogrid: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

apt_install() {
	if [ "$(id -u)" != 0 ]; then
		die "missing Debian package(s) $*: run 'sudo apt-get update && sudo apt-get install -y $*'"
	fi
	say "installing $* (apt-get)"
	if [ -z "${ECOGRID_APT_UPDATED:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
		export ECOGRID_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

ensure_go() {
	command -v go >/dev/null || die "Go is not installed: install Go 1.26 or newer from your distribution or go.dev, and put it on PATH"
}

# ensure_postgis makes sure the PostgreSQL server and PostGIS are installed.
ensure_postgis() {
	local pkgs=()
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		pkgs+=("postgresql-${PG_MAJOR}")
	else
		PG_MAJOR="$(ls -d /usr/lib/postgresql/*/ | sort -V | tail -1 | xargs basename)"
	fi
	if [ ! -f "/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control" ]; then
		pkgs+=("postgresql-${PG_MAJOR}-postgis-3")
	fi
	if [ "${#pkgs[@]}" -gt 0 ]; then
		apt_install "${pkgs[@]}"
	fi
}

# ensure_postgres_running starts the machine's PostgreSQL cluster when
# DATABASE_URL is not set and nothing answers on 127.0.0.1:5432.
ensure_postgres_running() {
	if [ -n "${DATABASE_URL:-}" ]; then
		return 0
	fi
	if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
		return 0
	fi
	if command -v pg_ctlcluster >/dev/null && [ -d "/etc/postgresql/${PG_MAJOR}/main" ]; then
		say "starting the PostgreSQL ${PG_MAJOR} cluster"
		pg_ctlcluster --skip-systemctl-redirect "${PG_MAJOR}" main start || die "could not start PostgreSQL: see /var/log/postgresql/"
		for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
	fi
	die "no PostgreSQL answers on 127.0.0.1:5432: start one (trust auth for user postgres) or set DATABASE_URL"
}

# ensure_tools installs the pinned buf and protoc plugins into ./bin.
ensure_tools() {
	make -s tools >/dev/null || die "installing buf and the protoc plugins with 'go install' failed (is the Go module proxy reachable?)"
}

# ensure_test_servers installs the servers the tests start themselves:
# versitygw, the S3 server the photo store's S3 tests run against (issue 15),
# built with 'go install' into ./bin (a few minutes the first time).
ensure_test_servers() {
	[ -x bin/versitygw ] || command -v versitygw >/dev/null && return 0
	say "installing versitygw (go install, into ./bin)"
	make -s test-tools >/dev/null || die "installing versitygw with 'go install' failed (is the Go module proxy reachable?)"
}

# ensure_test_packages installs the outside tools the tests drive: GDAL's
# ogrinfo/ogr2ogr (the GIS views are checked with the library QGIS uses)
# and Prometheus's promtool (alert rules and metrics exposition), poppler's
# pdftotext/pdftoppm and the CJK TrueType font of the audit's PDF reports.
ensure_test_packages() {
	local pkgs=()
	command -v ogr2ogr >/dev/null || pkgs+=(gdal-bin)
	command -v promtool >/dev/null || pkgs+=(prometheus)
	command -v pdftoppm >/dev/null || pkgs+=(poppler-utils)
	[ -f /usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf ] || pkgs+=(fonts-arphic-gbsn00lp)
	if [ "${#pkgs[@]}" -gt 0 ]; then
		apt_install "${pkgs[@]}"
	fi
}

# --- web console (issue 20) ------------------------------------------------
# ensure_console_tools makes sure Node (20.19+, for Vite), the console's
# pinned npm packages (web/package-lock.json) and Debian's Chromium (for
# the browser tests) are installed.
ensure_console_tools() {
	command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
	local major
	major="$(node -p 'process.versions.node.split(".")[0]')"
	[ "$major" -ge 20 ] || die "Node $(node --version) is too old for the console's build (Vite needs 20.19+): install Node 20 or newer"
	[ -x /usr/bin/chromium ] || apt_install chromium
	# The console is Chinese first: a CJK font so screenshots show it.
	[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || apt_install fonts-wqy-microhei
	if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
		say "installing the console's npm packages (npm ci)"
		(cd web && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in web/ failed (is the npm registry reachable?)"
	fi
}
