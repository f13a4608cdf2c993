#!/bin/sh
# No include in libmnemo/src runs up a layer (libmnemo/src/README.md):
# scripts/layers prints the graph and fails on an upward include.
set -eu
exec "${srcdir:-.}/scripts/layers" "${srcdir:-.}/libmnemo/src"
