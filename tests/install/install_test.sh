#!/usr/bin/env bash
# Installation test: `cmake --install` into a temporary prefix and the Debian
# package (CPack), each run from its installed paths with $RACKD_MODULE_PATH
# unset, so that rackd finds its modules in PREFIX/libexec/rackd:
#   * rackd check and render the installed patches (tone; headphone-eq, whose
#     preset sits beside it; binaural-stereo, with libmysofa's default.sofa);
#     outputs have the asked length and are not silent;
#   * files: man pages, bash completion (loaded and asked for completions),
#     systemd user units (naming the prefix; systemd-analyze verify), no chaos
#     module; the units' start script finds patches and execs rackd;
#   * the .deb: fields and Depends (libmysofa1 ships default.sofa), paths.
# The package is extracted with dpkg -x into a temporary root and run from
# there. With RACKD_TEST_DPKG_INSTALL=1 (.ci/run sets it), or on CI (CI=true)
# unless RACKD_TEST_DPKG_INSTALL=0, it is also installed for real with dpkg -i
# (as root), run as /usr/bin/rackd, and removed again with dpkg -r. Otherwise
# nothing outside the temporary folder is touched.
#
#   tests/install/install_test.sh [BUILD_DIR]      # default build/release (built)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
build=${1:-build/release}
[[ -f $build/CPackConfig.cmake ]] || { echo "install_test: $build is not a configured build tree" >&2; exit 2; }

tmp=$(mktemp -d /tmp/rackd-install-test.XXXXXX)
dpkg_installed=""
cleanup() {
  if [[ -n $dpkg_installed ]]; then dpkg -r rackd >/dev/null || echo "install_test: dpkg -r rackd failed" >&2; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
unset RACKD_MODULE_PATH
export JACK_NO_START_SERVER=1  # rackd devices/run must not start a jackd

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

# check_audio FILE SECONDS: FILE lasts SECONDS (to a sample) and is not silent.
check_audio() {
  local len rms
  len=$(soxi -D "$1" 2>/dev/null)
  rms=$(sox "$1" -n stat 2>&1 | awk '/^RMS +amplitude/ { print $3 }')
  awk -v l="$len" -v s="$2" -v r="$rms" 'BEGIN { exit !(l - s < 1e-4 && s - l < 1e-4 && r > 0.001) }' ||
    fail "$1: $len s, RMS $rms (want $2 s, not silent)"
  echo "   $(basename "$1"): $len s, RMS $rms"
}

# check_summary NAME: every module of the render in $out/summary ran throughout
# (a module that cannot find its files fails, is restarted, and its blocks are
# replaced).
check_summary() {
  if grep -Eq '"error"|"replaced":[1-9]|"restarts":[1-9]' "$out/summary"; then
    fail "$1: $(cat "$out/summary")"
  fi
}

# exercise ROOT PREFIX: an installed tree at ROOT/PREFIX whose units name
# PREFIX: ROOT is the folder dpkg -x extracted into, or empty (cmake --install
# --prefix, dpkg -i).
runs=0
exercise() {
  local root=$1 prefix=$2
  local p=$root$prefix out=$tmp/out$((++runs))
  local rackd=$p/bin/rackd patches=$p/share/rackd/patches
  mkdir -p "$out"

  step "files under $p"
  for f in bin/rackd bin/rackctl libexec/rackd/rackd-capture libexec/rackd/rackd-passthrough \
    libexec/rackd/rackd-eq libexec/rackd/rackd-hrir libexec/rackd/rackd-lv2 libexec/rackd/user-service; do
    [[ -x $p/$f ]] || fail "$p/$f missing or not executable"
  done
  [[ ! -e $p/libexec/rackd/rackd-chaos ]] || fail "the chaos test module is installed"
  for f in share/rackd/patches/tone.toml share/rackd/patches/headphone-eq.toml \
    share/rackd/patches/example-ParametricEQ.txt share/rackd/patches/binaural-stereo.toml \
    share/man/man1/rackd.1.gz share/man/man1/rackctl.1.gz share/man/man5/rackd-patch.5.gz \
    share/bash-completion/completions/rackd share/bash-completion/completions/rackctl \
    lib/systemd/user/rackd.service lib/systemd/user/rackd@.service share/doc/rackd/README.md; do
    [[ -f $p/$f ]] || fail "$p/$f missing"
  done
  for page in man1/rackd.1 man1/rackctl.1 man5/rackd-patch.5; do
    local text
    text=$(gzip -dc "$p/share/man/$page.gz" | groff -man -Tutf8 -ww 2>&1 >/dev/null)
    [[ -z $text ]] || fail "$page: groff warns: $text"
  done

  step "rackd from $rackd"
  "$rackd" --version
  "$p/bin/rackctl" --help >/dev/null
  "$rackd" check "$patches/tone.toml"
  "$rackd" render "$patches/tone.toml" --duration 2 --out "$out/tone.wav" >"$out/summary"
  check_summary tone
  check_audio "$out/tone.wav" 2
  sox -n -r 48000 -c 2 -b 16 "$out/in.wav" synth 1 pinknoise gain -12
  # The preset is named relative to the patch; default.sofa comes from libmysofa1.
  "$rackd" render "$patches/headphone-eq.toml" --in "$out/in.wav" --out "$out/eq.wav" >"$out/summary"
  check_summary headphone-eq
  check_audio "$out/eq.wav" 1
  "$rackd" render "$patches/binaural-stereo.toml" --in "$out/in.wav" --out "$out/binaural.wav" >"$out/summary"
  check_summary binaural-stereo
  check_audio "$out/binaural.wav" 1

  step "systemd user units"
  local unit
  for unit in rackd.service rackd@.service; do
    grep -qx "ExecStart=$prefix/libexec/rackd/user-service\( %i\)\?" "$p/lib/systemd/user/$unit" ||
      fail "$unit: ExecStart does not name $prefix/libexec/rackd/user-service"
  done
  # verify needs the units' commands at their real paths: the prefix install only.
  if [[ -z $root ]] && command -v systemd-analyze >/dev/null; then
    mkdir -p "$out/units" "$out/run"
    chmod 700 "$out/run"
    cp "$p/lib/systemd/user/rackd.service" "$out/units/"
    cp "$p/lib/systemd/user/rackd@.service" "$out/units/rackd@tone.service"
    local said
    said=$(XDG_RUNTIME_DIR=$out/run systemd-analyze verify --user --man=no \
      "$out/units/rackd.service" "$out/units/rackd@tone.service" 2>&1) || fail "systemd-analyze verify: $said"
    [[ -z $said ]] || fail "systemd-analyze verify: $said"
    echo "   systemd-analyze verify: clean"
  elif [[ -z $root ]]; then
    echo "   systemd-analyze verify: skipped (no systemd-analyze)"
  fi
  local svc=$p/libexec/rackd/user-service cfg=$out/config
  [[ $(XDG_CONFIG_HOME=$cfg "$svc" --print tone) == "$rackd run $patches/tone.toml" ]] ||
    fail "user-service tone: $(XDG_CONFIG_HOME=$cfg "$svc" --print tone)"
  mkdir -p "$cfg/rackd/patches"
  cp "$patches/tone.toml" "$cfg/rackd/patches/tone.toml"
  cp "$patches/tone.toml" "$cfg/rackd/rackd.toml"
  [[ $(XDG_CONFIG_HOME=$cfg RACKD_ARGS="--block 64 --rate 44100" "$svc" --print tone) == \
    "$rackd run $cfg/rackd/patches/tone.toml --block 64 --rate 44100" ]] || fail "user-service: ~/.config first"
  [[ $(XDG_CONFIG_HOME=$cfg "$svc" --print) == "$rackd run $cfg/rackd/rackd.toml" ]] ||
    fail "user-service without a name: ~/.config/rackd/rackd.toml"
  local rc=0
  XDG_CONFIG_HOME=$cfg "$svc" no-such-patch 2>/dev/null || rc=$?
  ((rc == 2)) || fail "user-service no-such-patch: exit $rc, want 2"
  # It execs rackd run (which then finds no such device: exit 1).
  rc=0
  XDG_CONFIG_HOME=$cfg RACKD_ARGS="--duration 0.1 --osc-port -1 --device no-such-device-rackd-test" \
    "$svc" tone >/dev/null 2>"$out/svc.err" || rc=$?
  if ((rc != 1)) || ! grep -q 'no output device matches "no-such-device-rackd-test"' "$out/svc.err"; then
    fail "user-service tone did not run rackd: exit $rc, $(cat "$out/svc.err")"
  fi

  if [[ -f /usr/share/bash-completion/bash_completion ]]; then
    step "bash completion"
    local words
    words=$(bash -c '
      source /usr/share/bash-completion/bash_completion
      source "$1/share/bash-completion/completions/rackd"
      source "$1/share/bash-completion/completions/rackctl"
      ask() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
              COMPREPLY=(); "_$1" "$1" "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
              printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd " "; }
      ask rackd ""; ask rackd render --; ask rackd check "$2/t"; ask rackctl ""' _ "$p" "$patches")
    [[ $words == "--help --version check devices render run
--audio-cpu --batch --block --duration --events --in --module-timeout --out --rate
$patches/tone.toml $patches/touchosc-simple.toml
add bypass connect disconnect dump get graph load remove restart save set status top" ]] || fail "completions: $words"
    echo "   ok"
  else
    echo "== bash completion: skipped (no bash-completion)"
  fi
}

step "cmake --build $build"
nice -n 19 cmake --build "$build" >/dev/null

step "cmake --install $build --prefix $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
exercise "" "$tmp/prefix"

step "cpack (DEB)"
cpack --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 || {
  cat "$tmp/cpack.log" >&2
  fail cpack
}
deb=$(ls "$tmp"/pkg/rackd_*.deb)
echo "   $(basename "$deb"), $(stat -c %s "$deb") bytes"
[[ $(dpkg-deb -f "$deb" Package) == rackd ]] || fail "Package field"
[[ $(dpkg-deb -f "$deb" Section) == sound ]] || fail "Section field"
version=$(sed -n 's/^project(rackd VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "Version $(dpkg-deb -f "$deb" Version), want $version"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libmysofa1 libportaudio2 liblo7 libsndfile1 libfftw3-single3 libtomlplusplus3; do
  [[ $depends == *"$lib "* || $depends == *"$lib," || $depends == *"$lib" ]] || fail "Depends lacks $lib: $depends"
done
echo "   Depends: $depends"
if dpkg-deb -c "$deb" | awk '{ print $6 }' | grep -v '^\./usr/'; then fail "files outside /usr"; fi

dpkg -x "$deb" "$tmp/root"
exercise "$tmp/root" /usr

real_install=${RACKD_TEST_DPKG_INSTALL:-}
[[ -n $real_install || ${CI:-} != true ]] || real_install=1
if [[ $real_install == 1 ]]; then
  if dpkg -s rackd >/dev/null 2>&1; then
    fail "rackd is installed already; not replacing it (dpkg -r rackd first)"
  fi
  step "dpkg -i $(basename "$deb")"
  dpkg_installed=1
  dpkg -i "$deb"
  [[ $(command -v rackd) == /usr/bin/rackd ]] || fail "rackd on PATH is $(command -v rackd)"
  if command -v man >/dev/null; then
    [[ $(man -w rackd-patch) == /usr/share/man/man5/rackd-patch.5.gz ]] || fail "man -w rackd-patch: $(man -w rackd-patch)"
  fi
  exercise "" /usr
  step "dpkg -r rackd"
  dpkg -r rackd
  dpkg_installed=""
  [[ ! -e /usr/bin/rackd && ! -e /usr/libexec/rackd ]] || fail "dpkg -r left files behind"
fi
echo "install_test: ok"
