#!/usr/bin/env bash
# Adds MedAlign Desktop to the desktop's application menu, pointing at this bundle folder.
#   ./install-desktop-entry.sh            for the current user (~/.local/share)
#   sudo ./install-desktop-entry.sh --system   for every user (/usr/local/share)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${XDG_DATA_HOME:-$HOME/.local/share}"
[[ "${1:-}" == "--system" ]] && prefix=/usr/local/share
mkdir -p "$prefix/applications"
for png in "$here"/share/icons/hicolor/*/apps/medalign.png; do
    size_dir="$(basename "$(dirname "$(dirname "$png")")")"
    install -D -m 644 "$png" "$prefix/icons/hicolor/$size_dir/apps/medalign.png"
done
svg="$here/share/icons/hicolor/scalable/apps/medalign.svg"
[[ -f "$svg" ]] && install -D -m 644 "$svg" "$prefix/icons/hicolor/scalable/apps/medalign.svg"
# sed's replacement treats \ & and the delimiter specially: escape them in the folder's path.
exec_path="$here/medalign-desktop"
exec_path="${exec_path//\\/\\\\}" exec_path="${exec_path//&/\\&}" exec_path="${exec_path//|/\\|}"
sed "s|^Exec=.*|Exec=\"$exec_path\"|" "$here/share/applications/medalign-desktop.desktop" \
    > "$prefix/applications/medalign-desktop.desktop"
chmod 644 "$prefix/applications/medalign-desktop.desktop"
echo "Installed $prefix/applications/medalign-desktop.desktop (runs $here/medalign-desktop)"
