#!/usr/bin/env bash
# One command for the whole method: make (or reuse) .venv from requirements.txt, then run.py.
#   ./run.sh            default schedule (the README's numbers)
#   ./run.sh --quick    a few minutes on 2 CPU cores
set -euo pipefail
cd "$(dirname "$0")"
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setting up .venv from requirements.txt ..."
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    echo "$want" > "$stamp"
fi
exec .venv/bin/python run.py "$@"
