# Sourced by scripts/setup.sh and scripts/build.sh: the pinned toolchain of the release build.
# The package is built with a dated nightly: `-Zbuild-std` with `panic=immediate-abort` rebuilds std
# without its panic machinery and formatting (a panic would be a bare trap with no message; README
# "Size"), 9.3 KB gzip smaller than stable. Tests, the dev server and the simulation use stable.
AUTHWIRE_NIGHTLY=nightly-2026-10-29
