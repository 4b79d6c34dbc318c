#!/usr/bin/env bash
# Fails if a log file holds an API key or a URL signature that was not redacted.
# Only line numbers are printed: echoing the match would leak the secret into CI output.
set -euo pipefail

log="${1:?usage: check-log-secrets.sh LOG_FILE}"
if [[ ! -f "$log" ]]; then
    echo "check-log-secrets: $log does not exist" >&2
    exit 2
fi

# -a: a log with a stray binary byte is still read as text (otherwise grep only says
# "binary file matches" and prints no lines). -i for signatures: URL parameters are matched
# without regard to case by the redaction, and `x-oss-signature` is lower case.
# `sk-` must not follow a letter, so words like "task-1234567" or "disk-usage" don't count.
key_lines=$(grep -naE '(^|[^A-Za-z])sk-[A-Za-z0-9]{6,}' "$log" | cut -d: -f1 | paste -sd, - || true)
# A signature counts only with a value after it; an empty one gives nothing away.
sig_lines=$(grep -naiP 'Signature=(?!\*\*\*|%2A%2A%2A|REDACTED)[^\s&]' "$log" | cut -d: -f1 | paste -sd, - || true)

status=0
if [[ -n "$key_lines" ]]; then
    echo "check-log-secrets: unredacted API key in $log at line(s): $key_lines" >&2
    status=1
fi
if [[ -n "$sig_lines" ]]; then
    echo "check-log-secrets: unredacted URL signature in $log at line(s): $sig_lines" >&2
    status=1
fi
if [[ $status -eq 0 ]]; then
    echo "check-log-secrets: no secrets in $log"
fi
exit $status
