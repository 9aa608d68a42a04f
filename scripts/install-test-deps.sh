#!/usr/bin/env bash
# The test suite's system packages (Debian) and axe-core, so that `pytest` runs the browser,
# accessibility, TLS-front, power-cut and telephony tests instead of skipping them:
#   chromium and CJK/emoji fonts (Playwright, screenshots), wrk, zbar-tools (QR decoding),
#   librsvg2-bin (SVG raster), nginx and openssl (the TLS front, tests/deploy), gcc and libc6-dev
#   (the fsync shim, tests/durability), espeak-ng and sox (the voice line's prompts), baresip (the
#   customer's phone, tests/voice); axe-core from the npm registry, checked against its published
#   integrity, into .cache/axe-core/ (where the tests look for it).
# The README's test command runs this first; so does CI (.ci/run). Run as root, or with sudo.
# Not Debian, or no way to install: it says what is missing and exits 0 — those tests then skip,
# each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(chromium fonts-noto-cjk fonts-noto-color-emoji wrk zbar-tools librsvg2-bin nginx openssl
          gcc libc6-dev espeak-ng sox baresip)
AXE_VERSION=4.14.1
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="

need=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in "${PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
else
  echo "install-test-deps: not a Debian system; install ${PACKAGES[*]} yourself, or the tests" \
       "that need them skip" >&2
fi

if [ ${#need[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "install-test-deps: missing ${need[*]}; run this script as root to install them" \
           "(the tests that need them skip until then)" >&2
      need=()
    fi
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  "${sudo[@]}" apt-get update -qq
  # nginx must not start Debian's default site on port 80: the tests start their own, on
  # 127.0.0.1 only. policy-rc.d answers "not now" to every service start during the install.
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    status=0
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || status=$?
    "${sudo[@]}" rm -f "$policy"
    [ "$status" = 0 ] || exit "$status"
  fi
fi

# axe-core: the one file the accessibility checks inject, pinned by version and integrity.
if [ ! -s .cache/axe-core/axe.min.js ]; then
  mkdir -p .cache/axe-core
  # A failed download is fatal in CI (CI=true), where the checks are mandatory; elsewhere the
  # accessibility checks skip.
  python3 - "$AXE_VERSION" "$AXE_INTEGRITY" <<'EOF' || [ "${CI:-}" != true ]
import base64, hashlib, io, sys, tarfile, urllib.request
version, integrity = sys.argv[1], sys.argv[2]
url = f"https://registry.npmjs.org/axe-core/-/axe-core-{version}.tgz"
try:
    data = urllib.request.urlopen(url, timeout=60).read()
except OSError as e:
    sys.exit(f"install-test-deps: cannot download axe-core ({e}); the accessibility checks skip")
algorithm, _, expected = integrity.partition("-")
if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
    sys.exit(f"install-test-deps: {url} does not match its published integrity; not used")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    member = tar.extractfile("package/axe.min.js")
    assert member is not None
    with open(".cache/axe-core/axe.min.js", "wb") as out:
        out.write(member.read())
print(f"install-test-deps: axe-core {version} in .cache/axe-core/")
EOF
fi
