#!/usr/bin/env bash
# The test command mutmut 2.x runs against each mutant (README: How we test): the test files given, or by
# default those of stats.py and metrics.py. mutmut edits src/ in place: run it in a clone of the repository,
# never beside a running study, with the project's venv active (`. .venv/bin/activate`):
#   python3 -m venv /tmp/mutvenv && /tmp/mutvenv/bin/pip install mutmut==2.5.1
#   /tmp/mutvenv/bin/mutmut run --paths-to-mutate "src/hskd/stats.py,src/hskd/metrics.py" --tests-dir tests \
#       --runner "$PWD/scripts/mutation_tests.sh"
#   /tmp/mutvenv/bin/mutmut run --paths-to-mutate "src/hskd/strategies.py,src/hskd/compression.py" \
#       --tests-dir tests --runner "$PWD/scripts/mutation_tests.sh tests/test_compression.py \
#       tests/test_protocol.py tests/test_strategies.py"
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then set -- tests/test_results.py tests/test_metrics.py; fi
PYTHONPATH="$PWD/src" exec python -m pytest -x -q -p no:cacheprovider "$@"
