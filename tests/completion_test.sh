#!/bin/bash
# The bash completion of mendctl offers the commands, their options and output formats.
set -u
source "$1"
fail=0
complete_words() {  # words... -> COMPREPLY for the last word
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _mendctl
    echo "${COMPREPLY[*]}"
}
expect() {  # expected got
    if [[ "$2" != "$1" ]]; then echo "expected '$1', got '$2'"; fail=1; fi
}
expect "status" "$(complete_words mendctl st)"
expect "approve" "$(complete_words mendctl appr)"
expect "text json" "$(complete_words mendctl status -o '')"
expect "--all" "$(complete_words mendctl incidents --a)"
expect "check" "$(complete_words mendctl policy '')"
complete -p mendctl >/dev/null || fail=1
exit $fail
