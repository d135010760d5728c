#!/usr/bin/env bash
# Set-up step (called by `make setup`): Debian's packages the kit needs beside its Python ones.
#   bubblewrap  the grading sandbox (`course grade` refuses to grade without it, unless --no-sandbox)
#   chromium    the browser the JupyterLab test drives with Playwright (skipped without it)
# Idempotent. Installs what is missing when we are root with apt-get; otherwise explains
# what to do and exits 0, so that setup still succeeds.
set -u

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_system_packages: installing ${missing[*]} with apt-get" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        exit 0
    fi
    echo "install_system_packages: apt-get could not install ${missing[*]}." >&2
fi

for package in "${missing[@]}"; do
    case "$package" in
    bubblewrap) cat >&2 <<'MSG'
install_system_packages: bubblewrap (bwrap) is not installed, so submissions cannot be graded
in the sandbox. Install it (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf
install bubblewrap), or grade unsandboxed with --no-sandbox, which runs students' code with
your permissions and network access.
MSG
    ;;
    chromium) cat >&2 <<'MSG'
install_system_packages: chromium is not installed at /usr/bin/chromium, so the JupyterLab
browser test (tests/test_browser.py) is skipped. Install it with: sudo apt-get install chromium
MSG
    ;;
    esac
done
exit 0
