#!/bin/sh
# Fill every empty *_PASSWORD= line of .env (created from .env.example if missing) with 48
# random hex characters. Lines that already have a value are left alone.
set -eu
cd "$(dirname "$0")/.."
[ -f .env ] || cp .env.example .env
tmp=$(mktemp)
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    *_PASSWORD=)
      secret=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
      printf '%s%s\n' "$line" "$secret" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < .env > "$tmp"
cat "$tmp" > .env
rm -f "$tmp"
chmod 600 .env
echo "secrets set in .env"
