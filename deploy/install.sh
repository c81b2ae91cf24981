#!/usr/bin/env bash
# deploy/install.sh: provision a Raspberry Pi (Raspberry Pi OS bookworm, 64-bit) as a ticket
# scanner. `install.sh --help` lists the options; deploy/DEPLOY.md is the operator's guide.
#
# How it is built, and why:
# - Idempotent. Every step looks at what is there first and changes only what differs; all
#   changes go through change(), which counts them, so a second run with the same options
#   truthfully reports "nothing to change" (Ansible's changed_when reads that line).
# - Secrets stay out of argv and logs. The token or OAuth client secret is read from a file or
#   stdin into a shell variable and written with bash builtins (printf, redirection), so it is
#   never an argument of any command (not even of a shell function: those get the variable's
#   name), never in the process list, and never printed.
# - Testable without a Pi. Every path is prefixed with --root, and every system command
#   (apt-get, dpkg, dpkg-query, getent, groupadd, useradd, usermod, systemctl, raspi-config,
#   runuser) is looked up through PATH, so the tests run this script on a temporary folder
#   with recording stubs first in PATH. The Python that builds the venv is
#   $TICKET_SCANNER_PYTHON.
# - The same layout the over-the-air updater (device/update/layout.py) uses and expects:
#   /opt/ticket-scanner/releases/<version>/{manifest.json,requirements.txt,wheels/,venv/,.ready},
#   `current` a relative symlink to releases/<version>, and /opt/ticket-scanner/.lock held
#   (flock) while releases or `current` change, so this script and the updater never overlap.
set -euo pipefail
shopt -s nullglob
# Files and folders this script creates are world-readable unless it says otherwise (the
# secret files are created 0600 and then opened to the service's group only).
umask 022

readonly PROG=install.sh
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly APP=ticket-scanner
readonly SERVICE_USER=ticket-scanner
readonly SERVICE_HOME=/var/lib/ticket-scanner # systemd's StateDirectory= creates it
readonly DEVICE_GROUPS=(video gpio i2c)       # camera + DMA heaps, /dev/gpiochip*, /dev/i2c-*
# --no-install-recommends (below) keeps picamera2's recommended Qt/OpenGL preview stack away:
# a scanner never shows a camera preview.
readonly APT_PACKAGES=(python3-picamera2 python3-lgpio python3-venv libzbar0 i2c-tools)
readonly INSTALL_DIR=/opt/ticket-scanner
readonly CONFIG_DIR=/etc/ticket-scanner
readonly CONFIG_FILE=$CONFIG_DIR/config.toml
# What the updater reads (device/update/options.py): the TUF root it trusts, and its URL.
readonly OTA_ROOT_FILE=$CONFIG_DIR/ota-root.json
readonly OTA_URL_FILE=$CONFIG_DIR/ota-url
readonly UNIT_DIR=/etc/systemd/system
readonly UNITS=(ticket-scanner.service ticket-scanner-update.service ticket-scanner-update.timer)
readonly SCANNER=ticket-scanner.service
readonly TIMER=ticket-scanner-update.timer
readonly PLACEHOLDER_URL=https://api.example.com/anyroad # deploy/config.example.toml's base_url
# Release versions as device/update/contract.py defines them: plain dotted numbers, which are
# also safe as folder names.
readonly VERSION_RE='^[0-9]{1,6}(\.[0-9]{1,6}){1,3}$'
readonly LOCK_WAIT_S=900 # an update in progress may be downloading over venue Wi-Fi
# The system Python, not whatever `python3` comes first in root's PATH: apt's picamera2 and
# lgpio live in its site-packages, which the venv sees through --system-site-packages.
PYTHON=${TICKET_SCANNER_PYTHON:-/usr/bin/python3}

# Options (see usage).
BUNDLE="" FROM_SOURCE=0 ROOT="" TOKEN_SRC="" CLIENT_SECRET_SRC="" BASE_URL="" OTA_ROOT="" OTA_URL=""
NO_START=0 DRY_RUN=0 FORCE=0 NO_API_CHECK=0
# Secrets, once read. Never printed, never passed as an argument.
TOKEN="" CLIENT_SECRET=""
# Texts written with write_file (which takes a variable's name).
CONFIG_TEXT="" I2C_MODULES=""
# What the run found or did.
UNITS_CHANGED=0 CHANGES=0 SERVICE_GID="" RELEASE_VERSION="" RESTART_SCANNER=0 RESTART_TIMER=0 REBOOT_NEEDED=0
NOT_STARTED_WHY="" NEEDED_SECRET="" API_CHECK_FAILED=0
TEMP_DIRS=()

usage() {
	cat <<EOF
Usage: sudo $PROG (--bundle FILE | --from-source) [options]

Provisions this Raspberry Pi (Raspberry Pi OS bookworm, 64-bit) as a ticket scanner: apt
packages, the ticket-scanner system user, the app in /opt/ticket-scanner/releases/<version>,
the /opt/ticket-scanner/current symlink, /etc/ticket-scanner/config.toml (only if absent), the
API secret, I2C, and the systemd units (scanner and update timer), enabled and started.
Last it checks that the configured API answers (see --no-api-check). Run it again at any
time: it changes only what differs, and says "nothing to change" if nothing does.

Where the app comes from (one is required):
  --bundle FILE             a release bundle (ticket-scanner-<version>.tar.gz: manifest.json,
                            hash-locked requirements.txt, wheels/); installed offline with
                            pip --no-index --require-hashes. If current already runs a newer
                            release (an over-the-air update), it is left alone.
  --from-source             build from the checkout this script is in (development; needs
                            network for the dependencies). Version: <pyproject version>+src.<hash
                            of the source>, so an unchanged tree is not rebuilt.

The API secret (read from a file, or from stdin with "-"; never echoed, never on a command
line). It goes where the config's [api] token_file / client_secret_file says, 0640
root:ticket-scanner, and is replaced only if it differs:
  --token-file FILE|-       the bearer token (first line)
  --client-secret-file FILE|-
                            the OAuth client secret (first line), with token_url/client_id set
                            in the config

Other options:
  --base-url URL            [api] base_url for a config created by this run (https://...).
                            An existing config is never changed.
  --ota-root FILE           the update repository's root.json this Pi trusts (from
                            deploy/ota init-repo), installed as /etc/ticket-scanner/ota-root.json
  --ota-url URL             the update repository's https:// URL, written to
                            /etc/ticket-scanner/ota-url. Without both, the update timer runs
                            but finds nothing to do.
  --no-start                enable the units but start nothing (e.g. when preparing an image)
  --no-api-check            skip the API check at the end (an image build without network).
                            Otherwise, with the config, its secret and the state folder in
                            place, the installed release's "ticket-scanner selftest --config"
                            runs as the ticket-scanner user and says whether the API answers;
                            a failed check is a warning, not a failed install (exit 0)
  --dry-run                 print what would change, change nothing (no root needed)
  --force                   install on a system other than bookworm arm64 (unsupported)
  --root DIR                prefix every path with DIR (for tests and staging). The system
                            commands still act on this machine: tests replace them with stubs
                            first in PATH.
  -h, --help                this help

Environment:
  TICKET_SCANNER_PYTHON     the Python that builds the venv (default /usr/bin/python3)

Exit status: 0 done (or nothing to change), 1 failed, 2 bad usage, 3 unsupported system
(refused without --force). A failed API check is a warning: the status stays 0.

Examples:
  # first install; asks for the token without echoing it
  sudo deploy/install.sh --bundle ticket-scanner-1.2.0.tar.gz \\
      --base-url https://tickets.example.com/anyroad --token-file -
  # the same from a file (then delete the file), or see first what a run would change
  sudo deploy/install.sh --bundle ticket-scanner-1.2.0.tar.gz --token-file /root/token.txt
  deploy/install.sh --bundle ticket-scanner-1.2.0.tar.gz --dry-run
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}
usage_error() {
	printf '%s: %s (see --help)\n' "$PROG" "$*" >&2
	exit 2
}

# change DESCRIPTION COMMAND [ARGS...]: the one way this script alters the system. It says
# what it does (with --dry-run: what it would do, and does not) and counts it.
change() {
	local what=$1
	shift
	CHANGES=$((CHANGES + 1))
	if ((DRY_RUN)); then
		say "would $what"
		return 0
	fi
	say "$what"
	"$@"
}

cleanup() {
	local dir
	for dir in "${TEMP_DIRS[@]}"; do rm -rf -- "$dir"; done
}
trap cleanup EXIT

# --- Options -----------------------------------------------------------------------------------

parse_args() {
	while (($#)); do
		case $1 in
		--bundle | --token-file | --client-secret-file | --base-url | --ota-root | --ota-url | --root)
			(($# >= 2)) || usage_error "$1 needs a value"
			case $1 in
			--bundle) BUNDLE=$2 ;;
			--token-file) TOKEN_SRC=$2 ;;
			--client-secret-file) CLIENT_SECRET_SRC=$2 ;;
			--base-url) BASE_URL=$2 ;;
			--ota-root) OTA_ROOT=$2 ;;
			--ota-url) OTA_URL=$2 ;;
			--root) ROOT=$2 ;;
			esac
			shift 2
			;;
		--from-source) FROM_SOURCE=1 && shift ;;
		--no-start) NO_START=1 && shift ;;
		--no-api-check) NO_API_CHECK=1 && shift ;;
		--dry-run) DRY_RUN=1 && shift ;;
		--force) FORCE=1 && shift ;;
		-h | --help) usage && exit 0 ;;
		*) usage_error "unknown option: $1" ;;
		esac
	done
	local sources=$FROM_SOURCE
	if [[ -n $BUNDLE ]]; then sources=$((sources + 1)); fi
	((sources == 1)) || usage_error "give exactly one of --bundle FILE and --from-source"
	if [[ -n $BUNDLE && ! -f $BUNDLE ]]; then usage_error "--bundle $BUNDLE: no such file"; fi
	if [[ $TOKEN_SRC == - && $CLIENT_SECRET_SRC == - ]]; then
		usage_error "only one secret can come from stdin"
	fi
	# The URLs land in a TOML string and a one-line file: no quotes, backslashes, spaces or
	# control characters.
	local option url
	for option in --base-url --ota-url; do
		url=$BASE_URL
		if [[ $option == --ota-url ]]; then url=$OTA_URL; fi
		if [[ -n $url ]] && [[ $url != https://?* || $url == *[[:space:][:cntrl:]\"\\]* ]]; then
			usage_error "$option must be an https:// URL without quotes or spaces"
		fi
	done
	if [[ -n $OTA_ROOT && ! -f $OTA_ROOT ]]; then usage_error "--ota-root $OTA_ROOT: no such file"; fi
	if [[ -n $ROOT ]]; then
		[[ -d $ROOT ]] || usage_error "--root $ROOT: no such folder"
		ROOT=$(cd -- "$ROOT" && pwd)
		if [[ $ROOT == / ]]; then ROOT=""; fi
	fi
}

# --- Checks before anything changes ------------------------------------------------------------

check_platform() {
	local codename="" arch problem
	if [[ -r $ROOT/etc/os-release ]]; then
		codename=$(sed -n 's/^VERSION_CODENAME=//p' "$ROOT/etc/os-release" | tr -d '"')
	fi
	# dpkg's architecture, not `uname -m`: 32-bit Raspberry Pi OS runs a 64-bit kernel on a
	# Pi 4 or 5, so uname says aarch64 while every package (and the Python) is armhf.
	arch=$(dpkg --print-architecture 2>/dev/null || echo unknown)
	if [[ $codename == bookworm && $arch == arm64 ]]; then return 0; fi
	problem="this system is ${codename:-an unknown release} on $arch; ticket-scanner supports"
	problem+=" Raspberry Pi OS bookworm 64-bit (arm64) only"
	if [[ $arch == armhf || $arch == armel ]]; then
		problem+=" (this is 32-bit Raspberry Pi OS: flash the 64-bit image)"
	fi
	if ((FORCE)); then
		warn "$problem; going on because of --force"
		return 0
	fi
	printf '%s: refusing: %s.\n%s: --force installs anyway, unsupported.\n' \
		"$PROG" "$problem" "$PROG" >&2
	exit 3
}

check_root() {
	if ((DRY_RUN)); then return 0; fi
	((EUID == 0)) || die "run as root (sudo $PROG ...): it installs packages, a user and units"
}

# read_secret SOURCE LABEL VARNAME: the first line of SOURCE (a file, or stdin for "-"), with
# surrounding whitespace removed as the app does, into the variable named VARNAME.
read_secret() {
	local source=$1 label=$2 line=""
	if [[ $source == - ]]; then
		if [[ -t 0 ]]; then
			read -r -s -p "$label (not echoed): " line || true # -s: the terminal shows nothing
			printf '\n' >&2
		else
			IFS= read -r line || true
		fi
	else
		[[ -f $source && -r $source ]] || die "$label file $source: not a readable file"
		IFS= read -r line <"$source" || true
	fi
	line=${line#"${line%%[![:space:]]*}"}
	line=${line%"${line##*[![:space:]]}"}
	[[ -n $line ]] || die "$label: the first line is empty"
	printf -v "$3" '%s' "$line"
}

# --- Small helpers -------------------------------------------------------------------------------

# ensure_dir PATH MODE UID GID: the folder exists with that mode and owner.
ensure_dir() {
	local path=$1 mode=$2 uid=$3 gid=$4
	if [[ ! -d $ROOT$path ]]; then
		change "create $path ($mode $uid:$gid)" make_dir "$ROOT$path" "$mode" "$uid" "$gid"
	else
		ensure_owner_mode "$path" "$mode" "$uid" "$gid"
	fi
}
make_dir() {
	mkdir -p -- "$1"
	chown -- "$3:$4" "$1"
	chmod -- "$2" "$1"
}

# ensure_owner_mode PATH MODE UID GID: fix ownership and mode of an existing file or folder.
ensure_owner_mode() {
	local path=$1 mode=$2 uid=$3 gid=$4 now
	[[ -e $ROOT$path ]] || return 0 # not there yet (a dry run): its creation was reported
	now=$(stat -c '%a %u %g' -- "$ROOT$path")
	if [[ $now == "${mode#0} $uid $gid" ]]; then return 0; fi
	change "set $path to $mode $uid:$gid (was $now)" set_owner_mode "$ROOT$path" "$mode" "$uid" "$gid"
}
set_owner_mode() {
	chown -- "$3:$4" "$1"
	chmod -- "$2" "$1"
}

# write_file DEST MODE UID GID VARNAME: DEST holds the variable's value (plus a newline),
# written to a temporary file beside it and renamed, so a reader never sees half a file.
write_file() {
	local dest=$1 mode=$2 uid=$3 gid=$4 tmp
	mkdir -p -- "${dest%/*}"
	tmp=$(mktemp -- "${dest%/*}/.${dest##*/}.XXXXXX") # created 0600: private while written
	printf '%s\n' "${!5}" >"$tmp"
	chown -- "$uid:$gid" "$tmp"
	chmod -- "$mode" "$tmp"
	mv -f -- "$tmp" "$dest"
}

# copy_file SRC DEST MODE: DEST becomes a root-owned copy of SRC, renamed into place.
copy_file() {
	local tmp
	mkdir -p -- "${2%/*}"
	tmp=$(mktemp -- "${2%/*}/.${2##*/}.XXXXXX")
	cp -- "$1" "$tmp"
	chown -- 0:0 "$tmp"
	chmod -- "$3" "$tmp"
	mv -f -- "$tmp" "$2"
}

# version_newer A B: true if release version A is newer than B (plain dotted numbers).
version_newer() {
	[[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1) == "$1" ]]
}

# The release `current` points at, if it is releases/<version>.
live_version() {
	local target
	target=$(readlink -- "$ROOT$INSTALL_DIR/current" 2>/dev/null) || return 0
	if [[ $target == releases/* ]]; then printf '%s\n' "${target#releases/}"; fi
}

python_minor() { "$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# --- Steps -----------------------------------------------------------------------------------

ensure_packages() {
	local pkg status missing=()
	for pkg in "${APT_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
		[[ $status == installed ]] || missing+=("$pkg")
	done
	if ((${#missing[@]} == 0)); then
		say "ok: apt packages ${APT_PACKAGES[*]}"
		return 0
	fi
	change "install apt packages: ${missing[*]}" apt_install "${missing[@]}"
}
apt_install() {
	local pkg unknown=() status=0
	DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed: check the network and /etc/apt/sources.list*"
	# Ask first, so a system without Raspberry Pi OS's archive gets one line naming the problem,
	# not apt's "Unable to locate package" and its exit status 100.
	for pkg in "$@"; do
		apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 || unknown+=("$pkg")
	done
	if ((${#unknown[@]})); then
		die "apt knows no package ${unknown[*]}: python3-picamera2 and python3-lgpio come from Raspberry Pi OS's own archive (archive.raspberrypi.com), which this system's apt sources lack; install Raspberry Pi OS bookworm 64-bit"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" || status=$?
	((status == 0)) || die "apt-get install $* failed (exit $status); see apt's messages above"
}

ensure_user() {
	local group members missing=()
	for group in "${DEVICE_GROUPS[@]}"; do
		# gpio and i2c come with Raspberry Pi OS; elsewhere (--force) the unit's
		# SupplementaryGroups= would fail without them.
		if ! getent group "$group" >/dev/null; then
			change "create system group $group" groupadd --system "$group"
		fi
	done
	if ! getent passwd "$SERVICE_USER" >/dev/null; then
		change "create system user $SERVICE_USER (groups ${DEVICE_GROUPS[*]}, no login)" \
			useradd --system --user-group --home-dir "$SERVICE_HOME" --no-create-home \
			--shell /usr/sbin/nologin --comment "ticket-scanner service" \
			--groups "$(IFS=,; printf '%s' "${DEVICE_GROUPS[*]}")" "$SERVICE_USER"
	else
		for group in "${DEVICE_GROUPS[@]}"; do
			members=$(getent group "$group" | cut -d: -f4)
			[[ ,$members, == *",$SERVICE_USER,"* ]] || missing+=("$group")
		done
		if ((${#missing[@]})); then
			change "add $SERVICE_USER to groups ${missing[*]}" \
				usermod --append --groups "$(IFS=,; printf '%s' "${missing[*]}")" "$SERVICE_USER"
		else
			say "ok: user $SERVICE_USER in groups ${DEVICE_GROUPS[*]}"
		fi
	fi
	SERVICE_GID=$(getent group "$SERVICE_USER" | cut -d: -f3 || true)
	if [[ -z $SERVICE_GID ]]; then
		((DRY_RUN)) || die "group $SERVICE_USER missing after creating the user"
		SERVICE_GID=$SERVICE_USER # only printed: a dry run creates nothing
	fi
}

take_lock() {
	if ((DRY_RUN)); then return 0; fi
	# The updater holds the same lock (flock on this file) while it changes releases/current.
	exec 9>>"$ROOT$INSTALL_DIR/.lock"
	if ! flock -n 9; then
		say "waiting for an over-the-air update to finish (up to $((LOCK_WAIT_S / 60)) min)"
		flock -w "$LOCK_WAIT_S" 9 || die "$INSTALL_DIR/.lock is still held; try again later"
	fi
}

# manifest_fields MANIFEST_JSON: "name version python installer", one per line.
manifest_fields() {
	"$PYTHON" -c '
import json, sys
m = json.loads(sys.argv[1])
if not isinstance(m, dict):
    raise SystemExit("manifest.json is not a JSON object")
for key in ("name", "version", "python", "installer"):
    value = m.get(key, "")
    print(value if isinstance(value, str) and value.isprintable() else "?")
' "$1"
}

install_bundle_release() {
	local manifest name version python installer live releases
	# The manifest alone, without unpacking the wheels (it is the bundle's first member).
	manifest=$(tar -xOzf "$BUNDLE" manifest.json 2>/dev/null ||
		tar -xOzf "$BUNDLE" ./manifest.json 2>/dev/null) ||
		die "$BUNDLE: no manifest.json at the top; is it a ticket-scanner release bundle?"
	{ read -r name && read -r version && read -r python && read -r installer; } \
		< <(manifest_fields "$manifest") || die "$BUNDLE: manifest.json is not readable JSON"
	[[ $name == "$APP" ]] || die "$BUNDLE: manifest.json names '$name', not $APP"
	[[ $version =~ $VERSION_RE ]] || die "$BUNDLE: manifest.json version '$version' is not a release version"
	if [[ -n $python && $python != "$(python_minor)" ]]; then
		die "$BUNDLE is built for Python $python; $PYTHON is $(python_minor)"
	fi
	if [[ -n $installer && ! $installer =~ ^pip-[A-Za-z0-9._+-]+\.whl$ ]]; then
		die "$BUNDLE: manifest.json installer '$installer' is not a pip wheel"
	fi
	live=$(live_version)
	if [[ -n $live && $live =~ $VERSION_RE && -f $ROOT$INSTALL_DIR/releases/$live/.ready ]] &&
		version_newer "$live" "$version"; then
		say "ok: current is $live, newer than this bundle's $version (an over-the-air update); left as it is"
		RELEASE_VERSION=$live
		return 0
	fi
	releases=$INSTALL_DIR/releases
	RELEASE_VERSION=$version
	if [[ -f $ROOT$releases/$version/.ready ]]; then
		say "ok: release $version is built"
		return 0
	fi
	if [[ -e $ROOT$releases/$version ]]; then
		change "remove $releases/$version: an earlier build stopped before it was ready" \
			rm -rf -- "$ROOT$releases/$version"
	fi
	change "build release $version in $releases/$version (offline, from the bundle's wheels)" \
		build_bundle_release "$version" "$installer"
}

build_bundle_release() {
	local version=$1 installer=$2 releases=$ROOT$INSTALL_DIR/releases
	local partial=$releases/.$version.partial release=$releases/$version
	# Unpack beside the release and rename, as the updater does: a stopped run leaves only a
	# .partial folder, which both clean up.
	rm -rf -- "$partial"
	mkdir -p -- "$partial"
	tar -xzf "$BUNDLE" -C "$partial" --no-same-owner --no-same-permissions
	[[ -f $partial/requirements.txt && -d $partial/wheels ]] ||
		die "$BUNDLE: requirements.txt or wheels/ missing"
	mv -T -- "$partial" "$release"
	# The venv is made in its final place: its scripts' #! lines name this path.
	if [[ -n $installer ]]; then
		[[ -f $release/wheels/$installer ]] || die "$BUNDLE: wheels/$installer missing"
		# pip runs from the bundle's own pip wheel, as the updater does: the same pip on every
		# device, whatever Debian ships.
		"$PYTHON" -m venv --system-site-packages --without-pip "$release/venv"
		local pip=("$release/venv/bin/python" "$release/wheels/$installer/pip")
	else
		"$PYTHON" -m venv --system-site-packages "$release/venv"
		local pip=("$release/venv/bin/python" -m pip)
	fi
	# PIP_CONFIG_FILE=/dev/null: no pip.conf (Raspberry Pi OS adds piwheels) is consulted;
	# exactly the bundle's hash-checked wheels are installed.
	PIP_CONFIG_FILE=/dev/null "${pip[@]}" install --quiet --disable-pip-version-check \
		--no-cache-dir --no-index --find-links "$release/wheels" --only-binary :all: \
		--require-hashes -r "$release/requirements.txt"
	check_release "$release" "$version"
}

# check_release DIR VERSION: the console script runs and reports the version, and the release's
# own self-test passes (as the updater requires before it switches); then mark the release
# ready (the updater's marker), after syncing: a power cut must not leave a .ready release whose
# files are still in the page cache.
check_release() {
	local release=$1 version=$2 reported output status=0
	reported=$("$release/venv/bin/$APP" --version) || die "$release: $APP --version failed"
	[[ $reported == "$APP $version" ]] ||
		die "$release: $APP --version says '$reported', expected '$APP $version'"
	output=$(PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 "$release/venv/bin/$APP" selftest 2>&1) || status=$?
	if ((status != 0)); then
		printf '%s\n' "$output" | tail -n 15 >&2
		die "$release: $APP selftest failed (exit $status): $(printf '%s\n' "$output" | grep -v '^[[:space:]]*$' | tail -n 1)"
	fi
	sync
	printf 'built and checked by install.sh\n' >"$release/.ready"
}

install_source_release() {
	local source base hash
	source=$(cd -- "$SCRIPT_DIR/.." && pwd)
	[[ -f $source/pyproject.toml ]] || die "$source: no pyproject.toml (is this a checkout?)"
	base=$("$PYTHON" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f)["project"]["version"])
' "$source/pyproject.toml")
	# A hash of what gets installed: the same tree is the same release, a changed one is new.
	hash=$(cd -- "$source" && find pyproject.toml device hal -type f ! -name '*.pyc' \
		! -path '*/__pycache__/*' -print0 2>/dev/null | LC_ALL=C sort -z |
		xargs -0 sha256sum | sha256sum | cut -c1-12)
	RELEASE_VERSION="$base+src.$hash"
	if [[ -f $ROOT$INSTALL_DIR/releases/$RELEASE_VERSION/.ready ]]; then
		say "ok: release $RELEASE_VERSION is built"
		return 0
	fi
	if [[ -e $ROOT$INSTALL_DIR/releases/$RELEASE_VERSION ]]; then
		change "remove $INSTALL_DIR/releases/$RELEASE_VERSION: an earlier build stopped" \
			rm -rf -- "$ROOT$INSTALL_DIR/releases/$RELEASE_VERSION"
	fi
	change "build release $RELEASE_VERSION from $source (dependencies from the package index)" \
		build_source_release "$source" "$base"
}

build_source_release() {
	local source=$1 base=$2 release=$ROOT$INSTALL_DIR/releases/$RELEASE_VERSION copy
	copy=$(mktemp -d)
	TEMP_DIRS+=("$copy")
	# Build from a copy, so pip's in-tree build/ and *.egg-info never land in the checkout.
	tar -C "$source" --exclude-vcs --exclude=./.venv --exclude=./build --exclude=./dist \
		--exclude='*.egg-info' --exclude=./bench/out -cf - . | tar -C "$copy" -xf -
	mkdir -p -- "$release"
	"$PYTHON" -m venv --system-site-packages "$release/venv"
	"$release/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
		--no-cache-dir "$copy"
	check_release "$release" "$base"
}

switch_current() {
	local target=releases/$RELEASE_VERSION link=$INSTALL_DIR/current
	if [[ -L $ROOT$link && $(readlink -- "$ROOT$link") == "$target" ]]; then
		say "ok: $link -> $target"
		return 0
	fi
	if [[ -e $ROOT$link && ! -L $ROOT$link ]]; then
		die "$link exists and is not a symlink; move it away first"
	fi
	change "point $link at $target" relink "$target" "$ROOT$link"
	RESTART_SCANNER=1
}
relink() {
	# A new link renamed over the old one: `current` is never missing, not even for a moment.
	local tmp=${2%/*}/.current.tmp
	rm -f -- "$tmp"
	ln -s -- "$1" "$tmp"
	mv -T -- "$tmp" "$2"
}

ensure_config() {
	local example=$SCRIPT_DIR/config.example.toml
	# 0750 root:ticket-scanner: the service reads its config and secrets, nobody else does,
	# and the service cannot change them (ProtectSystem=strict makes /etc read-only anyway).
	ensure_dir "$CONFIG_DIR" 0750 0 "$SERVICE_GID"
	if [[ -e $ROOT$CONFIG_FILE ]]; then
		say "ok: $CONFIG_FILE exists and is kept as it is (never overwritten)"
		if [[ -n $BASE_URL ]] && ! grep -qF "\"$BASE_URL\"" -- "$ROOT$CONFIG_FILE"; then
			warn "--base-url is not applied to an existing config; edit [api] base_url in $CONFIG_FILE"
		fi
	else
		[[ -f $example ]] || die "$example missing (run install.sh from a checkout's deploy/)"
		CONFIG_TEXT=$(<"$example")
		if [[ -n $BASE_URL ]]; then
			local line="base_url = \"$PLACEHOLDER_URL\""
			[[ $CONFIG_TEXT == *"$line"* ]] || die "$example has no line: $line"
			CONFIG_TEXT=${CONFIG_TEXT/"$line"/"base_url = \"$BASE_URL\""}
		fi
		change "create $CONFIG_FILE from deploy/config.example.toml (0640 root:$SERVICE_USER)" \
			write_file "$ROOT$CONFIG_FILE" 0640 0 "$SERVICE_GID" CONFIG_TEXT
		RESTART_SCANNER=1
	fi
	ensure_owner_mode "$CONFIG_FILE" 0640 0 "$SERVICE_GID"
}

# The settings install.sh needs from the config: where the secrets go, whether it uses OAuth,
# and whether base_url is still the example's. One per line.
CONFIG_TOKEN_FILE="" CONFIG_SECRET_FILE="" CONFIG_OAUTH=0 CONFIG_PLACEHOLDER=0
read_config() {
	local file=$ROOT$CONFIG_FILE fields
	[[ -f $file ]] || file=$SCRIPT_DIR/config.example.toml # a dry run created nothing
	fields=$("$PYTHON" -c '
import sys, tomllib
try:
    with open(sys.argv[1], "rb") as f:
        api = tomllib.load(f).get("api", {})
except (OSError, tomllib.TOMLDecodeError) as error:
    raise SystemExit(f"cannot read {sys.argv[1]}: {error}")
print(api.get("token_file", "/etc/ticket-scanner/token"))
print(api.get("client_secret_file", "/etc/ticket-scanner/client_secret"))
print(1 if api.get("token_url") else 0)
print(1 if api.get("base_url") == sys.argv[2] else 0)
' "$file" "$PLACEHOLDER_URL") || die "$CONFIG_FILE: not valid TOML; fix it, then run install.sh again"
	{ read -r CONFIG_TOKEN_FILE && read -r CONFIG_SECRET_FILE && read -r CONFIG_OAUTH &&
		read -r CONFIG_PLACEHOLDER; } <<<"$fields"
	[[ $CONFIG_TOKEN_FILE == /* && $CONFIG_SECRET_FILE == /* ]] ||
		die "$CONFIG_FILE: token_file and client_secret_file must be absolute paths"
}

# ensure_secret PATH LABEL VARNAME: PATH holds the secret in VARNAME, 0640 root:ticket-scanner.
ensure_secret() {
	local path=$1 label=$2 current=""
	if [[ -f $ROOT$path ]]; then
		current=$(<"$ROOT$path")
		if [[ $current == "${!3}" ]]; then
			say "ok: $label in $path is unchanged"
			ensure_owner_mode "$path" 0640 0 "$SERVICE_GID"
			return 0
		fi
	fi
	change "write the $label to $path (0640 root:$SERVICE_USER)" \
		write_file "$ROOT$path" 0640 0 "$SERVICE_GID" "$3"
	RESTART_SCANNER=1
}

ensure_secrets() {
	read_config
	if [[ -n $TOKEN ]]; then ensure_secret "$CONFIG_TOKEN_FILE" "API token" TOKEN; fi
	if [[ -n $CLIENT_SECRET ]]; then
		ensure_secret "$CONFIG_SECRET_FILE" "OAuth client secret" CLIENT_SECRET
	fi
	local needed=$CONFIG_TOKEN_FILE option=--token-file
	if ((CONFIG_OAUTH)); then needed=$CONFIG_SECRET_FILE option=--client-secret-file; fi
	NEEDED_SECRET=$needed
	if [[ ! -f $ROOT$needed ]] && ! ((DRY_RUN)); then
		NOT_STARTED_WHY="no secret in $needed: run install.sh again with $option FILE (or - for stdin)"
	elif [[ -f $ROOT$needed ]]; then
		ensure_owner_mode "$needed" 0640 0 "$SERVICE_GID"
	fi
	if ((CONFIG_PLACEHOLDER)); then
		NOT_STARTED_WHY="[api] base_url in $CONFIG_FILE is still the example's: set it (or use --base-url on a new config), then: systemctl start $SCANNER"
	fi
}

# The updater's trust anchor and repository URL, when given: replaced only if they differ.
ensure_ota() {
	if [[ -n $OTA_ROOT ]]; then
		if [[ -f $ROOT$OTA_ROOT_FILE ]] && cmp -s -- "$OTA_ROOT" "$ROOT$OTA_ROOT_FILE"; then
			say "ok: $OTA_ROOT_FILE"
			ensure_owner_mode "$OTA_ROOT_FILE" 0644 0 0
		else
			change "install the update trust root $OTA_ROOT_FILE" copy_file "$OTA_ROOT" "$ROOT$OTA_ROOT_FILE" 0644
		fi
	fi
	if [[ -n $OTA_URL ]]; then
		if [[ -f $ROOT$OTA_URL_FILE && $(<"$ROOT$OTA_URL_FILE") == "$OTA_URL" ]]; then
			say "ok: $OTA_URL_FILE"
			ensure_owner_mode "$OTA_URL_FILE" 0644 0 0
		else
			change "write the update URL to $OTA_URL_FILE" write_file "$ROOT$OTA_URL_FILE" 0644 0 0 OTA_URL
		fi
	fi
	if [[ ! -f $ROOT$OTA_ROOT_FILE || ! -f $ROOT$OTA_URL_FILE ]] && ! ((DRY_RUN)); then
		warn "no $OTA_ROOT_FILE or $OTA_URL_FILE: updates stay off until install.sh gets --ota-root and --ota-url"
	fi
}

ensure_i2c() {
	if command -v raspi-config >/dev/null 2>&1; then
		# raspi-config's nonint convention: get_i2c prints 0 when enabled; do_i2c 0 enables
		# (config.txt, and the bus at once with dtparam and modprobe: no reboot).
		if [[ $(raspi-config nonint get_i2c 2>/dev/null || true) == 0 ]]; then
			say "ok: I2C enabled"
		else
			change "enable I2C (raspi-config nonint do_i2c 0)" raspi-config nonint do_i2c 0
		fi
		return 0
	fi
	# No raspi-config: the same two settings by hand, and the bus appears after a reboot.
	local config_txt=/boot/firmware/config.txt modules=/etc/modules-load.d/ticket-scanner-i2c.conf
	if [[ ! -f $ROOT$config_txt ]]; then
		warn "no raspi-config and no $config_txt: enable I2C bus 1 yourself"
		return 0
	fi
	if grep -Eq '^[[:space:]]*dtparam=([^#]*,)?i2c_arm(=on)?([,[:space:]#]|$)' -- "$ROOT$config_txt"; then
		say "ok: I2C enabled in $config_txt"
	else
		# [all] first: the file may end inside a model filter such as [pi4].
		change "enable I2C in $config_txt (dtparam=i2c_arm=on; takes effect after a reboot)" \
			append_i2c_dtparam "$ROOT$config_txt"
		REBOOT_NEEDED=1
	fi
	if [[ -f $ROOT$modules ]] || grep -qsx 'i2c[-_]dev' -- "$ROOT/etc/modules"; then
		say "ok: i2c-dev loaded at boot"
	else
		# shellcheck disable=SC2034 # write_file reads it through its name
		I2C_MODULES=i2c-dev
		change "load i2c-dev at boot ($modules)" write_file "$ROOT$modules" 0644 0 0 I2C_MODULES
		REBOOT_NEEDED=1
	fi
}
append_i2c_dtparam() {
	printf '\n[all]\n# ticket-scanner (deploy/install.sh): I2C bus 1 for the OLED\ndtparam=i2c_arm=on\n' >>"$1"
}

ensure_units() {
	local unit src dest
	ensure_dir "$UNIT_DIR" 0755 0 0
	for unit in "${UNITS[@]}"; do
		src=$SCRIPT_DIR/systemd/$unit
		dest=$UNIT_DIR/$unit
		[[ -f $src ]] || die "$src missing (run install.sh from a checkout's deploy/)"
		if [[ -f $ROOT$dest ]] && cmp -s -- "$src" "$ROOT$dest"; then
			ensure_owner_mode "$dest" 0644 0 0
			continue
		fi
		change "install $dest" copy_file "$src" "$ROOT$dest" 0644
		UNITS_CHANGED=1
		if [[ $unit == "$SCANNER" ]]; then RESTART_SCANNER=1; fi
		if [[ $unit == "$TIMER" ]]; then RESTART_TIMER=1; fi
	done
	if ((UNITS_CHANGED)) && systemd_running; then
		change "reload systemd (daemon-reload)" systemctl daemon-reload
	elif ((UNITS_CHANGED)); then
		say "systemd is not running here (a chroot or an image being prepared): no daemon-reload"
	else
		say "ok: units ${UNITS[*]}"
	fi
}

# systemd_running: PID 1 is systemd, so units can be reloaded and started. In a chroot or a
# container preparing an image, `systemctl is-system-running` says "offline".
systemd_running() {
	[[ $(systemctl is-system-running 2>/dev/null || true) != offline ]]
}

ensure_services() {
	local unit running=1
	systemd_running || running=0
	for unit in "$SCANNER" "$TIMER"; do
		if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
			say "ok: $unit enabled"
		else
			# SYSTEMD_OFFLINE=1: without a running systemd, enable works on the unit files alone
			# (the wants/ symlinks), as for an image that boots later.
			change "enable $unit" env SYSTEMD_OFFLINE=$((1 - running)) systemctl enable --quiet "$unit"
		fi
	done
	if ((NO_START)); then
		say "not starting anything (--no-start)"
		return 0
	fi
	if ((!running)); then
		warn "systemd is not running here (a chroot or an image build?): the units are enabled and start at the next boot"
		return 0
	fi
	ensure_running "$TIMER" "$RESTART_TIMER"
	if [[ -n $NOT_STARTED_WHY ]]; then
		warn "$SCANNER not started: $NOT_STARTED_WHY"
		return 0
	fi
	ensure_running "$SCANNER" "$RESTART_SCANNER"
}

# ensure_running UNIT RESTART: started if stopped; restarted if RESTART and running.
ensure_running() {
	local unit=$1 restart=$2
	if systemctl is-active --quiet "$unit" 2>/dev/null; then
		if ((restart)); then
			change "restart $unit (its release, config, secret or unit changed)" start_unit restart "$unit"
		else
			say "ok: $unit running"
		fi
	else
		change "start $unit" start_unit start "$unit"
	fi
}
start_unit() {
	# The scanner is Type=notify: this waits for its READY=1, after its self-checks.
	systemctl "$1" "$2" ||
		die "$2 did not start; see: systemctl status $2; journalctl -b -u $2"
}

# --- The API check, last -------------------------------------------------------------------------

readonly API_CHECK_TIMEOUT_S=120 # selftest's local checks, plus the probe's own timeouts
API_CHECK_COMMAND="runuser -u $SERVICE_USER -- $INSTALL_DIR/current/venv/bin/$APP selftest --config $CONFIG_FILE"
readonly API_CHECK_COMMAND # what an operator runs to check again (sudo first)

# check_api: does the configured API answer as AnyRoad? The installed release's own
# `selftest --config` (device/selftest.py) says, one line per check. A failed check never fails
# the run (exit 0): the install itself is complete, the venue's network is often not up yet at
# provisioning time, and a failed exit would stop a fleet playbook on a Pi that is fine. So a
# failure is made loud instead: the FAIL lines, what guests will see, what to fix, and a
# reminder after the summary line.
check_api() {
	local skip
	if ((DRY_RUN)); then return 0; fi # only reports: the release may not even be built yet
	skip=$(api_check_skipped) || true
	if [[ -n $skip ]]; then
		say "not checking the API: $skip"
		return 0
	fi
	local output status=0
	say "checking the API: $API_CHECK_COMMAND"
	# As the service user, so nothing the check opens (the journal in the state folder) is
	# created root-owned, and with the unit's UMask=0077. From /: root's working folder may be
	# closed to that user. With --root the config's own paths (secret, journal) are still this
	# machine's: the check is only meaningful on the Pi itself.
	output=$(cd / && umask 077 && PYTHONNOUSERSITE=1 timeout "$API_CHECK_TIMEOUT_S" \
		runuser -u "$SERVICE_USER" -- "$ROOT$INSTALL_DIR/current/venv/bin/$APP" selftest \
		--config "$ROOT$CONFIG_FILE" 2>&1 </dev/null) || status=$?
	report_api_check "$output" "$status"
}

# api_check_skipped: why the check cannot tell anything useful here (nothing if it can).
api_check_skipped() {
	if ((NO_API_CHECK)); then
		echo "--no-api-check"
	elif ! systemd_running; then
		# An image build in a chroot: the network it sees is the build host's, not the venue's,
		# and the state folder (made by systemd at the first start) is not there yet.
		echo "systemd is not running here (an image build?); on the Pi, check it with: sudo $API_CHECK_COMMAND"
	elif ((CONFIG_PLACEHOLDER)); then
		echo "[api] base_url in $CONFIG_FILE is still the example's"
	elif [[ ! -f $ROOT$NEEDED_SECRET ]]; then
		echo "no secret in $NEEDED_SECRET"
	elif [[ ! -d $ROOT$SERVICE_HOME ]]; then
		# Only systemd makes it (StateDirectory=, owned by the service user), at the scanner's
		# first start; the service user cannot, and the check would fail on the journal.
		echo "$SERVICE_HOME does not exist until $SCANNER first starts; then: sudo $API_CHECK_COMMAND"
	elif ! command -v runuser >/dev/null 2>&1; then
		echo "runuser (util-linux) is missing; check it with: sudo -u $SERVICE_USER $INSTALL_DIR/current/venv/bin/$APP selftest --config $CONFIG_FILE"
	fi
}

# report_api_check OUTPUT STATUS: one ok line, or every FAIL line with what it means and what
# to fix.
report_api_check() {
	local output=$1 status=$2 api_line fails line
	api_line=$(grep -m 1 '^ok   API: ' <<<"$output" || true)
	fails=$(grep '^FAIL ' <<<"$output" || true)
	if ((status == 0)) && [[ -n $api_line ]]; then
		say "ok: the API answers: ${api_line#ok   API: }"
		return 0
	fi
	API_CHECK_FAILED=1
	if ((status == 0)); then
		warn "the API was not checked: this release's selftest --config has no API check (an older release?)"
		return 0
	fi
	if [[ -z $fails ]]; then
		# Not the selftest's verdict: runuser refused, the timeout struck, the release broke.
		local why="exit $status"
		if ((status == 124)); then why="no answer within $API_CHECK_TIMEOUT_S s"; fi
		fails=$(grep -v '^[[:space:]]*$' <<<"$output" | tail -n 5 || true)
		warn "the API check did not run to the end ($why):"
		while IFS= read -r line; do warn "  $line"; done <<<"${fails:-(no output)}"
	else
		warn "the API check FAILED:"
		while IFS= read -r line; do warn "  $line"; done <<<"$fails"
	fi
	warn "until this is fixed, the scanner shows guests SETUP ERROR or NO CONNECTION instead of a verdict"
	warn "to fix: $(api_fix "$fails")"
	warn "then check again: sudo $API_CHECK_COMMAND"
}

# api_fix FAIL_LINES: what to change, for the first thing that failed.
api_fix() {
	case $1 in
	*"FAIL config:"*) echo "the config or its secret, as the FAIL line says ($CONFIG_FILE, $NEEDED_SECRET)" ;;
	*"FAIL API: wrong url:"*) echo "set [api] base_url in $CONFIG_FILE to AnyRoad's Tickets API URL, then: sudo systemctl restart $SCANNER" ;;
	*"FAIL API: unauthorized:"*) echo "the API refuses the secret in $NEEDED_SECRET: run install.sh again with a valid --token-file - (or --client-secret-file - for OAuth)" ;;
	*"FAIL API: unreachable:"*) echo "this Pi cannot reach the API: check its network, DNS and firewall, and [api] base_url in $CONFIG_FILE (at a venue whose network is not up yet, check again once it is)" ;;
	*"FAIL API: server error:"*) echo "AnyRoad itself is failing: check again later, and give AnyRoad the request_id if it persists" ;;
	*) echo "what the lines above name (see also: journalctl -u $SCANNER -b)" ;;
	esac
}

main() {
	parse_args "$@"
	check_platform
	check_root
	# Secrets first: a typo in a secret file's name stops the run before anything changed.
	if [[ -n $TOKEN_SRC ]]; then read_secret "$TOKEN_SRC" "API token" TOKEN; fi
	if [[ -n $CLIENT_SECRET_SRC ]]; then
		read_secret "$CLIENT_SECRET_SRC" "OAuth client secret" CLIENT_SECRET
	fi
	if ((DRY_RUN)); then say "dry run: nothing is changed"; fi

	ensure_packages
	ensure_user
	ensure_dir "$INSTALL_DIR" 0755 0 0
	take_lock
	ensure_dir "$INSTALL_DIR/releases" 0755 0 0
	if ((FROM_SOURCE)); then install_source_release; else install_bundle_release; fi
	switch_current
	ensure_config
	ensure_secrets
	ensure_ota
	ensure_i2c
	ensure_units
	ensure_services
	check_api

	if ((CHANGES == 0)); then
		say "nothing to change: $APP $RELEASE_VERSION is installed"
	elif ((DRY_RUN)); then
		say "dry run: $CHANGES change(s) would be made"
	else
		say "done: $CHANGES change(s); $APP $RELEASE_VERSION is installed"
	fi
	if ((REBOOT_NEEDED)); then say "reboot to enable I2C: sudo reboot"; fi
	if ((API_CHECK_FAILED)); then
		warn "installed, but the API check did not pass (see above): guests see SETUP ERROR or NO CONNECTION until it is fixed"
	fi
	return 0
}

main "$@"
