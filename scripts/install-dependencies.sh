#!/usr/bin/env bash
# Installs what nfowner needs on Debian/Ubuntu: the libmnl headers it builds against, nftables
# (the nft command it installs its rules with), iptables, and the tools the tests use
# (iproute2 for namespaces, util-linux for nsenter and setpriv, procps for sysctl, ping and curl
# for the trace tests, tshark and wireshark-common (capinfos) to check the pcapng files nfowner
# writes), libsqlite3-dev (the history's SQLite, through GRDB), and systemd (systemd-analyze
# verifies the shipped unit), tmux (the live view's tests drive it in a pseudo-terminal),
# chromium (renders the HTML report headless in its test) and python3 (test helpers). Idempotent.
set -euo pipefail
packages=(libmnl-dev libsqlite3-dev nftables iptables iproute2 util-linux procps pkg-config iputils-ping curl tshark wireshark-common systemd tmux chromium python3)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-dependencies: all present (${packages[*]})"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-dependencies: missing ${missing[*]}; run as root (sudo $0)" >&2
    exit 1
fi
echo "install-dependencies: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# wireshark-common asks whether non-root users may capture (a setuid dumpcap): nfowner only
# reads files with tshark, so no.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
