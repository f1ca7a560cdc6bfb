#!/usr/bin/env bash
# Install or update facegate on a Raspberry Pi (Raspberry Pi OS) or an NVIDIA Jetson
# (JetPack). Run as root from a checkout: sudo scripts/install.sh
# Safe to run again: each step checks what is already there.
#
#   scripts/install.sh --detect   print the board, GPIO package and module, and exit
#
# Layout (the systemd unit uses the same paths):
#   /opt/facegate/app    a copy of this checkout, installed editable into the venv
#   /opt/facegate/venv   Python venv with system site packages (picamera2 comes from apt)
#   /etc/facegate        config.toml (root:facegate 0640)
#   /var/lib/facegate    state: gallery, event log (facegate:facegate 0700)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/facegate
APP=$PREFIX/app
VENV=$PREFIX/venv
CONF_DIR=/etc/facegate
CONFIG=$CONF_DIR/config.toml
STATE_DIR=/var/lib/facegate
SERVICE_USER=facegate
UNIT_NAME=facegate.service
EXAMPLE_CONFIG=${FACEGATE_EXAMPLE_CONFIG:-$REPO/config.example.toml}
MODEL_FILE=${FACEGATE_MODEL_FILE:-/proc/device-tree/model}

die() { echo "install.sh: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# Sets BOARD (pi|jetson), GPIO_PACKAGE (pip name) and GPIO_MODULE (import name).
detect_board() {
    local model=""
    if [[ -r $MODEL_FILE ]]; then model=$(tr -d '\0' <"$MODEL_FILE"); fi
    case $model in
        "Raspberry Pi 5"* | "Raspberry Pi Compute Module 5"*)  # Pi 5, Pi 500, CM5
            BOARD=pi GPIO_PACKAGE=rpi-lgpio GPIO_MODULE=RPi.GPIO ;;
        "Raspberry Pi"*)
            BOARD=pi GPIO_PACKAGE=RPi.GPIO GPIO_MODULE=RPi.GPIO ;;
        *Jetson*)
            BOARD=jetson GPIO_PACKAGE=Jetson.GPIO GPIO_MODULE=Jetson.GPIO ;;
        *)
            die "unsupported board '${model:-unknown}' (from $MODEL_FILE): need a Raspberry Pi or an NVIDIA Jetson" ;;
    esac
}

install_apt_packages() {
    local packages=(python3-venv python3-pip python3-dev build-essential libsqlcipher-dev)
    if [[ $BOARD == pi ]]; then packages+=(python3-picamera2); fi
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
    install -d -m 0755 "$PREFIX" "$staging"
    for item in edge models_ncnn systemd firmware_config scripts pyproject.toml \
        requirements.txt README.md; do
        if [[ -e $REPO/$item ]]; then cp -a "$REPO/$item" "$staging/"; fi
    done
    rm -rf "$APP"
    mv "$staging" "$APP"
}

# True when the system python has an OpenCV built with GStreamer (JetPack's).
system_opencv_has_gstreamer() {
    python3 -c 'import cv2, re, sys; sys.exit(not re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()))' \
        2>/dev/null
}

install_python_packages() {
    step "venv $VENV with $GPIO_PACKAGE"
    [[ -x $VENV/bin/python ]] || python3 -m venv --system-site-packages "$VENV"
    local requirements=$APP/requirements.txt
    if [[ $BOARD == jetson ]] && system_opencv_has_gstreamer; then
        # keep JetPack's OpenCV: the pip wheel has no GStreamer, so no CSI cameras
        requirements=$APP/requirements.device.txt
        grep -v '^opencv-python' "$APP/requirements.txt" >"$requirements"
    fi
    if [[ $GPIO_PACKAGE == rpi-lgpio ]]; then
        # both provide the RPi.GPIO module; only rpi-lgpio drives a Pi 5
        "$VENV/bin/pip" uninstall -y -q RPi.GPIO >/dev/null 2>&1 || true
    fi
    "$VENV/bin/pip" install -q -r "$requirements" "$GPIO_PACKAGE"
    # editable, so the bundled models_ncnn/ beside edge/ is found
    "$VENV/bin/pip" install -q --no-deps -e "$APP"
}

create_folders_and_config() {
    step "folders $CONF_DIR $STATE_DIR and $CONFIG"
    install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
    install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
    if [[ -e $CONFIG ]]; then
        echo "    keeping existing $CONFIG"
        return
    fi
    [[ -f $EXAMPLE_CONFIG ]] || die "example config $EXAMPLE_CONFIG not found (set FACEGATE_EXAMPLE_CONFIG)"
    install -m 0640 -o root -g "$SERVICE_USER" "$EXAMPLE_CONFIG" "$CONFIG"
    if [[ $GPIO_MODULE != RPi.GPIO ]]; then
        set_gpio_module
    fi
}

set_gpio_module() {
    sed -i -E "s/^([[:space:]]*module[[:space:]]*=[[:space:]]*)\"RPi\.GPIO\"/\1\"$GPIO_MODULE\"/" "$CONFIG"
    if grep -q "\"$GPIO_MODULE\"" "$CONFIG"; then
        return
    fi
    if grep -q '^\[gpio\]' "$CONFIG"; then
        echo "    WARNING: set module = \"$GPIO_MODULE\" in the [gpio] section of $CONFIG" >&2
    else
        printf '\n[gpio]\nmodule = "%s"\n' "$GPIO_MODULE" >>"$CONFIG"
    fi
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

create_gallery_key() {
    step "gallery key (facegate init)"
    # as the service user: the key file must belong to the user that reads it
    runuser -u "$SERVICE_USER" -- "$VENV/bin/facegate" init --config "$CONFIG"
}

install_unit() {
    step "systemd unit $UNIT_NAME"
    install -m 0644 "$APP/systemd/$UNIT_NAME" "/etc/systemd/system/$UNIT_NAME"
    systemctl daemon-reload
    systemctl enable "$UNIT_NAME"
    if systemctl is-active --quiet "$UNIT_NAME"; then
        systemctl restart "$UNIT_NAME"  # an update: run the new code
    fi
}

main() {
    detect_board
    if [[ ${1:-} == --detect ]]; then
        echo "$BOARD $GPIO_PACKAGE $GPIO_MODULE"
        return
    fi
    [[ $EUID -eq 0 ]] || die "run as root: sudo $0"
    install_apt_packages
    create_user
    copy_app
    install_python_packages
    create_folders_and_config
    install_udev_rules
    create_gallery_key
    install_unit
    cat <<DONE
facegate installed for $BOARD ($GPIO_PACKAGE).
Next:
  1. edit $CONFIG (door pins and polarity, camera)
$( [[ $BOARD == pi ]] && echo "  2. add the lines you need from $APP/firmware_config/config.txt to /boot/firmware/config.txt and reboot" || echo "  2. read $APP/firmware_config/jetson.md (pinmux, pull resistors, CSI camera)" )
  3. $VENV/bin/facegate check-config --config $CONFIG && $VENV/bin/facegate doctor --config $CONFIG
  4. systemctl start $UNIT_NAME; journalctl -fu $UNIT_NAME
DONE
}

main "$@"
