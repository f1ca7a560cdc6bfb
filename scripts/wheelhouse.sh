#!/usr/bin/env bash
# Wheels for an offline install, fetched on a connected machine of any kind:
#
#   scripts/wheelhouse.sh OS ARCH DIR      download every wheel facegate needs on OS/ARCH into DIR
#   scripts/wheelhouse.sh --check OS ARCH  resolve them from package metadata only, and list them
#
# OS: bookworm (Raspberry Pi OS / Debian 12, Python 3.11), trixie (Debian 13, Python
# 3.13) or jammy (JetPack 6 / Ubuntu 22.04, Python 3.10, with Jetson.GPIO); ARCH:
# aarch64 (Pi 4/5, Jetson) or x86_64. Binary wheels only, so nothing compiles on the
# board. Copy DIR to the board and run: sudo scripts/install.sh --wheelhouse DIR
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "wheelhouse.sh: $*" >&2; exit 1; }

check=false
if [[ ${1:-} == --check ]]; then check=true; shift; fi
[[ $# -eq $($check && echo 2 || echo 3) ]] || die "usage: $0 OS ARCH DIR | --check OS ARCH"
os=$1 arch=$2 dest=${3:-}

# OS -> the Python it ships and the glibc minor version (the newest manylinux tag it runs)
case $os in
    bookworm) python=3.11 glibc=36 ;;
    trixie) python=3.13 glibc=41 ;;
    jammy) python=3.10 glibc=35 ;;
    *) die "unknown OS '$os' (valid: bookworm, trixie, jammy)" ;;
esac
case $arch in aarch64 | x86_64) ;; *) die "unknown ARCH '$arch' (valid: aarch64, x86_64)" ;; esac

# pip takes each --platform literally, so name every manylinux tag this glibc runs
platforms=(--platform "manylinux2014_$arch")
for ((minor = glibc; minor >= 17; minor--)); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done

# setuptools: the installer's editable install builds with it. tomli: pip evaluates
# requirements.txt's python_version marker for this interpreter, not the target's.
packages=(-r requirements.txt -c "constraints/$os.txt" "setuptools>=77")
if [[ $python == 3.10 ]]; then packages+=("tomli>=1.1"); fi
if [[ $os == jammy ]]; then packages+=(Jetson.GPIO); fi  # JetPack runs only on Jetsons

target=(--only-binary=:all: "${platforms[@]}" --python-version "$python" --implementation cp)
if $check; then
    report=$(mktemp)
    trap 'rm -f "$report"; rm -rf "${report}.target"' EXIT
    python3 -m pip install --quiet --dry-run --ignore-installed --target "$report.target" \
        "${target[@]}" --report "$report" "${packages[@]}"
    python3 -c 'import json, sys
for item in sorted(json.load(open(sys.argv[1]))["install"], key=lambda i: i["metadata"]["name"].lower()):
    print(item["download_info"]["url"].rsplit("/", 1)[1])' "$report"
else
    mkdir -p "$dest"
    python3 -m pip download --quiet --dest "$dest" "${target[@]}" "${packages[@]}"
    echo "wheels for $os on $arch (Python $python) in $dest:"
    ls "$dest"
fi
