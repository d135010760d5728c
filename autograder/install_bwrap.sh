#!/usr/bin/env bash
# Set-up step (called by `make setup`): make sure bubblewrap, the grading sandbox, is here.
# Idempotent.  Installs Debian's bubblewrap when it is missing and we are root with
# apt-get; otherwise explains what to do and exits 0, so that setup still succeeds:
# the grader then refuses to grade until bwrap works or --no-sandbox is given.
set -u

if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_bwrap: installing bubblewrap (the grading sandbox) with apt-get" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; then
        command -v bwrap >/dev/null 2>&1 && exit 0
    fi
    echo "install_bwrap: apt-get could not install bubblewrap." >&2
fi

cat >&2 <<'EOF'
install_bwrap: bubblewrap (bwrap) is not installed, so submissions cannot be graded in
the sandbox.  Install it (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora:
sudo dnf install bubblewrap), or grade unsandboxed with --no-sandbox, which runs
students' code with your permissions and network access.
EOF
exit 0
