#!/usr/bin/env bash
# Install or update facegate on a Raspberry Pi 4/5 (Raspberry Pi OS Bookworm or
# Trixie), an NVIDIA Jetson (JetPack 6), or a plain Debian/Ubuntu machine with no
# camera or GPIO (--board generic: mock door, replayed photos; for CI and trials).
# Run as root from a checkout:
#
#   sudo scripts/install.sh [--board pi|jetson|generic] [--wheelhouse DIR] [--web] [--mqtt]
#   scripts/install.sh --detect   print board, GPIO package and module, and exit
#
# --web also sets up the administrators' web app: this device's self-signed HTTPS
# certificate (made once, kept after) and facegate-web.service, enabled. Once set up,
# later runs update its unit with or without --web.
#
# --wheelhouse DIR installs offline: Python packages only from DIR (made on a
# connected machine by scripts/wheelhouse.sh), and no apt: the system packages
# must be there already (it says which are missing).
#
# --mqtt also installs facegate-mqtt.service, the broker client ([mqtt] in the
# config), with a drop-in that lets it reach the broker's addresses and no other;
# run it again after changing [mqtt] host. Once installed it is kept up to date by
# every later run.
#
# Safe to run again: a second run installs the new code, keeps the config, the
# key and the gallery, migrates the gallery forward, and restarts the unit if it
# was running.
#
# Layout (the systemd unit uses the same paths):
#   /opt/facegate/app    root:root 0755, a copy of this checkout, installed into the venv
#   /opt/facegate/venv   root:root 0755, venv with system site packages (picamera2, GPIO from apt)
#   /etc/facegate        root:facegate 0750: config.toml root:facegate 0640
#   /etc/facegate/key    facegate:facegate 0700: gallery.key facegate 0600
#   /etc/facegate/web    facegate:facegate 0700: cert.pem, key.pem (--web)
#   /var/lib/facegate    facegate:facegate 0700: gallery, event log
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/facegate
APP=$PREFIX/app
VENV=$PREFIX/venv
# the replay camera of --board generic (and `facegate demo`) use the bundled photos
DEMO_PHOTOS=$APP/edge/evaluation/demo_faces
CONF_DIR=/etc/facegate
CONFIG=$CONF_DIR/config.toml
KEY_DIR=$CONF_DIR/key
WEB_DIR=$CONF_DIR/web
STATE_DIR=/var/lib/facegate
SERVICE_USER=facegate
UNIT_NAME=facegate.service
WEB_UNIT_NAME=facegate-web.service
MQTT_UNIT_NAME=facegate-mqtt.service
UNIT_DIR=/etc/systemd/system
PYTHON=${FACEGATE_PYTHON:-/usr/bin/python3}
MODEL_FILE=${FACEGATE_MODEL_FILE:-/proc/device-tree/model}
OS_RELEASE=${FACEGATE_OS_RELEASE:-/etc/os-release}

die() { echo "install.sh: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# Sets BOARD (pi|jetson|generic), GPIO_PACKAGE (apt or pip name, - for none) and
# GPIO_MODULE (import name, - for the mock backend). $1: --board's value, if given.
detect_board() {
    local model=""
    if [[ ${1:-} == generic ]]; then
        BOARD=generic GPIO_PACKAGE=- GPIO_MODULE=-
        return
    fi
    if [[ -r $MODEL_FILE ]]; then model=$(tr -d '\0' <"$MODEL_FILE"); fi
    case $model in
        "Raspberry Pi 5"* | "Raspberry Pi Compute Module 5"*)  # Pi 5, Pi 500, CM5
            BOARD=pi GPIO_PACKAGE=python3-rpi-lgpio GPIO_MODULE=RPi.GPIO ;;
        "Raspberry Pi"*)
            BOARD=pi GPIO_PACKAGE=python3-rpi.gpio GPIO_MODULE=RPi.GPIO ;;
        *Jetson*)
            BOARD=jetson GPIO_PACKAGE=Jetson.GPIO GPIO_MODULE=Jetson.GPIO ;;
        *)
            die "unsupported board '${model:-unknown}' (from $MODEL_FILE): need a Raspberry Pi" \
                "or an NVIDIA Jetson, or --board generic for a machine without camera and GPIO" ;;
    esac
    if [[ -n ${1:-} && $1 != "$BOARD" ]]; then
        die "--board $1, but $MODEL_FILE says '$model'"
    fi
}

# Sets CONSTRAINTS: the pins of numpy and OpenCV that this OS's own packages need.
detect_os() {
    local codename
    codename=$(sed -n 's/^VERSION_CODENAME=//p' "$OS_RELEASE" | tr -d "\"'")
    CONSTRAINTS=$REPO/constraints/$codename.txt
    [[ -n $codename && -f $CONSTRAINTS ]] || die "unsupported OS '${codename:-unknown}'" \
        "(from $OS_RELEASE): constraints/ has $(cd "$REPO/constraints" && echo *.txt)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
        || die "$PYTHON is missing or older than 3.10"
}

apt_packages() {
    local packages=(python3-venv)
    if [[ $BOARD == pi ]]; then packages+=(python3-picamera2 "$GPIO_PACKAGE"); fi
    echo "${packages[@]}"
}

install_apt_packages() {
    local packages missing=() package
    read -r -a packages <<<"$(apt_packages)"
    if [[ -n $WHEELHOUSE ]]; then
        for package in "${packages[@]}"; do
            dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
                || missing+=("$package")
        done
        [[ ${#missing[@]} -eq 0 ]] || die "offline install needs these system packages first:" \
            "apt-get install ${missing[*]}"
        step "apt packages present: ${packages[*]}"
        return
    fi
    step "apt packages: ${packages[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
}

create_user() {
    step "user $SERVICE_USER in groups gpio, video"
    local group
    for group in gpio video; do
        getent group "$group" >/dev/null || groupadd --system "$group"
    done
    if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
    usermod --append --groups gpio,video "$SERVICE_USER"
}

copy_app() {
    step "application in $APP"
    local staging=$APP.new item
    rm -rf "$staging"
    install -d -m 0755 -o root -g root "$PREFIX" "$staging"
    for item in edge models_ncnn systemd firmware_config scripts constraints pyproject.toml \
        requirements.txt README.md config.example.toml; do
        cp -R "$REPO/$item" "$staging/"
    done
    find "$staging" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
    # whoever owned the checkout, the installed code is root's and read-only to others
    chown -R root:root "$staging"
    chmod -R u+rwX,go+rX,go-w "$staging"
    rm -rf "$APP"
    mv "$staging" "$APP"
}

# True when the system python has an OpenCV built with GStreamer (JetPack's).
system_opencv_has_gstreamer() {
    "$PYTHON" -c 'import cv2, re, sys; sys.exit(not re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()))' \
        2>/dev/null
}

install_python_packages() {
    step "venv $VENV with $APP/requirements.txt, constraints/$(basename "$CONSTRAINTS")"
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv --system-site-packages "$VENV"
    local index=()
    if [[ -n $WHEELHOUSE ]]; then index=(--no-index --find-links "$WHEELHOUSE"); fi
    local pip=("$VENV/bin/pip" install -q --only-binary=:all: "${index[@]}"
        -c "$APP/constraints/$(basename "$CONSTRAINTS")")
    local requirements=$APP/requirements.txt
    if [[ $BOARD == jetson ]] && system_opencv_has_gstreamer; then
        # keep JetPack's OpenCV: the pip wheel has no GStreamer, so no CSI cameras
        requirements=$APP/requirements.device.txt
        grep -v '^opencv-python' "$APP/requirements.txt" >"$requirements"
    fi
    if [[ $BOARD == pi ]]; then
        # pip copies left by an older install would shadow the apt GPIO library
        "$VENV/bin/pip" uninstall -y -q RPi.GPIO rpi-lgpio lgpio >/dev/null 2>&1 || true
    fi
    local extra=()
    if [[ $BOARD == jetson ]]; then extra=("$GPIO_PACKAGE"); fi
    "${pip[@]}" -r "$requirements" "${extra[@]}"
    # editable, so the bundled models_ncnn/ beside edge/ is found; its build needs
    # setuptools, from the index or the wheelhouse like everything else
    "$VENV/bin/pip" install -q --no-deps "${index[@]}" -e "$APP"
    chown -R root:root "$VENV" "$APP"
}

create_folders() {
    step "folders $CONF_DIR, $KEY_DIR, $STATE_DIR"
    install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
    install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$KEY_DIR" "$STATE_DIR"
    # what is in them is the service user's alone, whoever made it (root running
    # init by hand before, an older install)
    chown -R "$SERVICE_USER:$SERVICE_USER" "$KEY_DIR" "$STATE_DIR"
    chmod -R go-rwx "$KEY_DIR" "$STATE_DIR"
}

# set_config SECTION KEY VALUE: replace `KEY = ...` inside [SECTION] of $CONFIG
# (VALUE is TOML, e.g. '"mock"'); the shipped config sets every key.
set_config() {
    local section=$1 key=$2 value=$3 edited
    edited=$(awk -v section="[$section]" -v key="$key" -v value="$value" '
        /^\[/ { inside = ($1 == section) }
        inside && $1 == key && $2 == "=" { print key " = " value; found = 1; next }
        { print }
        END { if (!found) exit 1 }' "$CONFIG") || die "no '$key' in [$section] of $CONFIG"
    printf '%s\n' "$edited" >"$CONFIG"
}

create_config() {
    if [[ -e $CONFIG ]]; then
        step "keeping $CONFIG"
        # [enrollment] became [enrolment]; the service refuses the old name
        if grep -qx '\[enrollment\]' "$CONFIG"; then
            sed -i 's/^\[enrollment\]$/[enrolment]/' "$CONFIG"
        fi
        # liveness.model named the NUAA-trained model, which is gone; the default
        # (liveness.models, the MiniFASNet pair) replaces it
        sed -i -E '/^[[:space:]]*model[[:space:]]*=[[:space:]]*"liveness_rgb_v[0-9]+"/d' "$CONFIG"
        # a trial install made before the demo photos moved into the package
        if grep -qF "replay_path = \"$APP/tests/data/faces\"" "$CONFIG"; then
            set_config camera replay_path "\"$DEMO_PHOTOS\""
        fi
    else
        step "config $CONFIG for $BOARD"
        install -m 0640 -o root -g "$SERVICE_USER" "$APP/config.example.toml" "$CONFIG"
        case $BOARD in
            jetson) set_config gpio module '"Jetson.GPIO"' ;;
            generic)
                set_config gpio backend '"mock"'
                set_config camera source '"replay"'
                set_config camera replay_path "\"$DEMO_PHOTOS\""
                set_config camera loop true ;;
        esac
    fi
    chown root:"$SERVICE_USER" "$CONFIG"
    chmod 0640 "$CONFIG"
    as_service_user "$VENV/bin/facegate" check-config --config "$CONFIG" >/dev/null
}

install_udev_rules() {
    step "udev rules for GPIO access"
    install -m 0644 "$APP/firmware_config/99-facegate-gpio.rules" /etc/udev/rules.d/
    if command -v udevadm >/dev/null; then
        udevadm control --reload-rules
        udevadm trigger --subsystem-match=gpio --subsystem-match=dma_heap
        udevadm trigger --sysname-match='gpiomem*'
    fi
}

# Runs a command as the service user as the unit does: from its state folder
# (lgpio writes in the working directory; the caller's may be unreadable to it),
# and with the unit's UMask, so that the gallery it makes is private too.
as_service_user() {
    (cd "$STATE_DIR" && umask 0077 && runuser -u "$SERVICE_USER" -- "$@")
}

gallery_path() {
    "$VENV/bin/python" -c 'import sys; from edge.config import load_config
print(load_config(sys.argv[1]).gallery.path)' "$CONFIG"
}

create_or_migrate_gallery() {
    if [[ -e $(gallery_path) ]]; then
        step "gallery kept; opening it migrates it forward (facegate gallery check)"
        as_service_user "$VENV/bin/facegate" gallery check --config "$CONFIG"
    else
        step "gallery key and gallery (facegate init)"
        as_service_user "$VENV/bin/facegate" init --config "$CONFIG"
    fi
}

# enable_unit NAME: enable it, and restart it if it runs (an update: the new code)
enable_unit() {
    local name=$1
    if [[ ! -d /run/systemd/system ]]; then
        # systemctl enable works on the files alone; starting needs a running systemd
        if command -v systemctl >/dev/null; then systemctl enable "$name"; fi
        echo "    systemd is not running here (PID 1 is $(ps -o comm= -p 1 2>/dev/null || echo unknown)):" \
            "installed and enabled $name, but could not start it"
        return
    fi
    systemctl daemon-reload
    systemctl enable "$name"
    if systemctl is-active --quiet "$name"; then
        systemctl restart "$name"
        echo "    restarted $name"
    fi
}

web_wanted() {
    $WEB || [[ -e $UNIT_DIR/$WEB_UNIT_NAME ]]
}

# The web app: its certificate (made once, as the service user, who alone reads its
# key) and its unit.
install_web() {
    step "web app: certificate in $WEB_DIR, systemd unit $WEB_UNIT_NAME"
    install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$WEB_DIR"
    if [[ -e $WEB_DIR/cert.pem ]]; then
        echo "    keeping the certificate in $WEB_DIR"
    else
        as_service_user "$VENV/bin/facegate" web cert --config "$CONFIG" | sed 's/^/    /'
    fi
    install -m 0644 -o root -g root "$APP/systemd/$WEB_UNIT_NAME" "$UNIT_DIR/$WEB_UNIT_NAME"
    enable_unit "$WEB_UNIT_NAME"
}

install_unit() {
    step "systemd unit $UNIT_NAME"
    install -m 0644 -o root -g root "$APP/systemd/$UNIT_NAME" "$UNIT_DIR/$UNIT_NAME"
    local drop_ins=$UNIT_DIR/$UNIT_NAME.d
    if [[ $BOARD == jetson ]]; then
        install -d -m 0755 "$drop_ins"
        install -m 0644 -o root -g root "$APP/systemd/jetson.conf" "$drop_ins/jetson.conf"
    else
        rm -f "$drop_ins/jetson.conf"
    fi
    enable_unit "$UNIT_NAME"
}

# The addresses [mqtt] host resolves to now, one per line; nothing when MQTT is off.
broker_addresses() {
    "$VENV/bin/python" -c 'import socket, sys; from edge.config import load_config
m = load_config(sys.argv[1]).mqtt
if m.enabled:
    found = {a[4][0] for a in socket.getaddrinfo(m.host, m.port, proto=socket.IPPROTO_TCP)}
    print("\n".join(sorted(found)))' "$CONFIG"
}

install_mqtt_unit() {
    step "systemd unit $MQTT_UNIT_NAME (the broker client)"
    install -m 0644 -o root -g root "$APP/systemd/$MQTT_UNIT_NAME" "$UNIT_DIR/$MQTT_UNIT_NAME"
    local drop_ins=$UNIT_DIR/$MQTT_UNIT_NAME.d addresses
    addresses=$(broker_addresses) || die "cannot resolve [mqtt] host in $CONFIG"
    install -d -m 0755 "$drop_ins"
    if [[ -z $addresses ]]; then
        rm -f "$drop_ins/broker.conf"
        echo "    [mqtt] is off in $CONFIG: set it up (README, Many doors), then run this again"
        if command -v systemctl >/dev/null; then systemctl disable "$MQTT_UNIT_NAME" 2>/dev/null || true; fi
        return
    fi
    {
        echo "# Written by scripts/install.sh from [mqtt] host: the broker, and nothing else."
        echo "[Service]"
        echo "IPAddressAllow=$(echo "$addresses" | tr '\n' ' ' | sed 's/ $//')"
    } >"$drop_ins/broker.conf"
    chmod 0644 "$drop_ins/broker.conf"
    echo "    the broker client may reach: $(echo "$addresses" | tr '\n' ' ')"
    enable_unit "$MQTT_UNIT_NAME"
}

next_steps() {
    if [[ $GPIO_PACKAGE == - ]]; then
        echo "facegate installed for $BOARD."
    else
        echo "facegate installed for $BOARD ($GPIO_PACKAGE)."
    fi
    echo "Next:"
    echo "  1. edit $CONFIG (door pins and polarity, camera)"
    case $BOARD in
        pi) echo "  2. add the lines you need from $APP/firmware_config/config.txt to" \
                 "/boot/firmware/config.txt and reboot (they hold the relay locked from power-on)" ;;
        jetson) echo "  2. read $APP/firmware_config/jetson.md: pinmux, pull resistors, and the" \
                     "hold resistor that keeps the relay locked whenever facegate is not running" ;;
        generic) echo "  2. this is a trial install: mock door, replayed photos (README, On the device)" ;;
    esac
    echo "  3. $VENV/bin/facegate check-config --config $CONFIG && $VENV/bin/facegate doctor --config $CONFIG"
    echo "  4. systemctl start $UNIT_NAME; journalctl -fu $UNIT_NAME"
    if web_wanted; then
        echo "  5. the web app: $VENV/bin/facegate admin add NAME --config $CONFIG (the first" \
             "administrator), systemctl start $WEB_UNIT_NAME, then https://<this device>:<[web] port>/;" \
             "compare the certificate's fingerprint with what 'facegate doctor' prints"
    fi
}

main() {
    local board_arg="" detect=false
    WHEELHOUSE="" WEB=false MQTT=false
    while [[ $# -gt 0 ]]; do
        case $1 in
            --detect) detect=true ;;
            --mqtt) MQTT=true ;;
            --board) [[ $# -ge 2 ]] || die "--board needs pi, jetson or generic"; board_arg=$2; shift ;;
            --wheelhouse) [[ $# -ge 2 ]] || die "--wheelhouse needs a folder"; WHEELHOUSE=$2; shift ;;
            --web) WEB=true ;;
            *) die "unknown option '$1' (valid: --board pi|jetson|generic, --wheelhouse DIR, --web, --mqtt, --detect)" ;;
        esac
        shift
    done
    case $board_arg in "" | pi | jetson | generic) ;; *) die "--board must be pi, jetson or generic" ;; esac
    detect_board "$board_arg"
    if $detect; then
        echo "$BOARD $GPIO_PACKAGE $GPIO_MODULE"
        return
    fi
    [[ $EUID -eq 0 ]] || die "run as root: sudo $0"
    if [[ -n $WHEELHOUSE ]]; then
        [[ -d $WHEELHOUSE ]] || die "--wheelhouse $WHEELHOUSE is not a folder"
        WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
    fi
    detect_os
    install_apt_packages
    create_user
    copy_app
    install_python_packages
    create_folders
    create_config
    if [[ $BOARD != generic ]]; then install_udev_rules; fi
    create_or_migrate_gallery
    install_unit
    if web_wanted; then install_web; fi
    # once installed, every later run keeps the broker client up to date
    if $MQTT || [[ -e $UNIT_DIR/$MQTT_UNIT_NAME ]]; then install_mqtt_unit; fi
    next_steps
}

main "$@"
