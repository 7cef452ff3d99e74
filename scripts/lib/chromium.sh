# Sourced by the headless-Chromium page checks (scripts/check-chat-page, scripts/check-report).
# need_chromium NAME: installs Debian's chromium if it is missing (prints "skipped: …" and exits 0
# only if that fails) and requires node (20 or later) to drive it through the DevTools protocol.
need_chromium() {
  local name="$1"
  if ! command -v chromium >/dev/null 2>&1; then
    echo "$name: installing chromium (Debian package)" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; } \
       || ! command -v chromium >/dev/null 2>&1; then
      echo "skipped: chromium is not installed and 'apt-get install chromium' failed"
      exit 0
    fi
  fi
  if ! command -v node >/dev/null 2>&1; then
    echo "$name: FAIL: node (20 or later) is required to drive Chromium through the DevTools protocol" >&2
    exit 1
  fi
}
