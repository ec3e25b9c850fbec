#!/bin/sh
# Entry point of the collectors image: runs one service, `python -m services.<name>`, the name
# taken from the first argument or else from $SERVICE. Any other command is run as given
# (`collectors health --wait 30`, `collectors keys rotate`, `sh`...).
set -eu

SERVICES="accounts scheduler scraper notifier requests documents web"

is_service() {
    case " $SERVICES " in
        *" $1 "*) return 0 ;;
        *) return 1 ;;
    esac
}

if [ $# -gt 0 ] && is_service "$1"; then
    name=$1
    shift
    exec python -m "services.$name" "$@"
fi
if [ $# -gt 0 ]; then
    exec "$@"
fi
if [ -n "${SERVICE:-}" ] && is_service "$SERVICE"; then
    exec python -m "services.$SERVICE"
fi
echo "collectors: set SERVICE (or pass as first argument) one of: $SERVICES; got '${SERVICE:-}'" >&2
exit 64
